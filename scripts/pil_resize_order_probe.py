from PIL import Image
import numpy as np, random
rng=np.random.default_rng(1); random.seed(1)
rows=[]
for _ in range(400):
    w1,h1,w2,h2=[random.randint(8,120) for _ in range(4)]
    if w1==w2 or h1==h2: continue
    a=rng.integers(0,256,(h1,w1),dtype=np.uint8); im=Image.fromarray(a,"L")
    ref=np.asarray(im.resize((w2,h2),Image.BICUBIC))
    hf=(ref==np.asarray(im.resize((w2,h1),Image.BICUBIC).resize((w2,h2),Image.BICUBIC))).all()
    vf=(ref==np.asarray(im.resize((w1,h2),Image.BICUBIC).resize((w2,h2),Image.BICUBIC))).all()
    if hf==vf: continue
    rows.append((w1,h1,w2,h2,'v' if vf else 'h'))
import math
def test(name,f):
    ok=sum((f(*r[:4])==r[4]) for r in rows); print(f"{name:40s} {ok}/{len(rows)}")
test("sy>sx", lambda w1,h1,w2,h2: 'v' if h1/h2>w1/w2 else 'h')
test("v inter smaller", lambda w1,h1,w2,h2: 'v' if w1*h2<w2*h1 else 'h')
test("h upscale", lambda w1,h1,w2,h2: 'v' if w2>w1 else 'h')
test("v down & h up", lambda w1,h1,w2,h2: 'v' if (w2>w1 and h2<h1) else 'h')
test("h2<h1 and w2>=... ", lambda w1,h1,w2,h2: 'v' if (h2<h1 and w2*h1 > w1*h2) else 'h')
bad=[r for r in rows if ('v' if w1*h2<w2*h1 else 'h')]
for r in rows[:40]: print(r, "sx=%.2f sy=%.2f"%(r[0]/r[2], r[1]/r[3]))
print("misfits")
for r in rows:
    w1,h1,w2,h2,c=r
    p='v' if (h2<h1 and w2*h1 > w1*h2) else 'h'
    if p!=c: print(r, "sx=%.2f sy=%.2f hint=%d vint=%d"%(w1/w2,h1/h2,w2*h1,w1*h2))
import math
def ks(s): 
    sc=max(s,1.0); return math.ceil(2*sc)*2+1
def cost_rule(w1,h1,w2,h2, a=1):
    kx=ks(w1/w2); ky=ks(h1/h2)
    hf=w2*h1*kx + w2*h2*ky; vf=w1*h2*ky + w2*h2*kx
    return 'v' if vf<hf else 'h'
test("cost ksize", cost_rule)
def cost2(w1,h1,w2,h2):
    kx=max(w1/w2,1); ky=max(h1/h2,1)
    hf=w2*h1*kx + w2*h2*ky; vf=w1*h2*ky + w2*h2*kx
    return 'v' if vf<hf else 'h'
test("cost scale", cost2)
def r3(w1,h1,w2,h2):
    return 'v' if (h1/h2 > 1 and w1/w2 <= 1 and w1*h2 < w2*h1) or (h1/h2>1 and w1/w2>1 and ks(h1/h2)*w1*h2 < 0) else 'h'
test("v down, h up/none, v inter smaller", r3)
