"""What one training step of OpenCLIP's own `train_one_epoch` consumed and produced, collected with
forward hooks and wrappers only (no OpenCLIP file is edited), in cliprepro's tensor names and
execution order (src/train/trainer.cpp: record_step, record_state):

  data/sample_ids, [data/sample_keys,]         the batch as the loader gave it (every
  data/images, data/texts                      micro-batch of the step, concatenated; keys for
                                               WebDataset, python/cliprepro/record_wds.py)
  activations/<capture point>, bn_batch/...    forward hooks on OpenCLIP module paths; BatchNorm
                                               batch statistics as the kernel saved them
  activations/image_features|text_features     encode_image/encode_text (normalised)
  activations/logits_per_image|_text           ClipLoss.get_logits
  scalars/logit_scale, scalars/loss
  grads/<param>                                after the step: unscaled, clipped, DDP-averaged
  scalars/lr, scaler/found_inf, optimizer/lr/<group>
  buffers/*, optimizer/{exp_avg,exp_avg_sq,step}/*, params/*, scaler/{scale,growth_tracker}
"""
import torch

from .log_write import Entry

GROUP_NAMES = ("no_decay", "decay")  # open_clip_train/main.py's two AdamW groups, in its order


# Modules that compute nothing worth logging in training (dropout, identity placeholders).
PASS_THROUGH = ("Identity", "Dropout", "PatchDropout")


def _stack(m):
    """A stack of blocks: a ModuleList/Sequential of one or more modules of one class that hold
    parameters (RN50's layer1, a transformer's resblocks, a timm trunk's stages and blocks); not a
    mixed Sequential such as a stem, a head or RN50's downsample."""
    if not isinstance(m, (torch.nn.ModuleList, torch.nn.Sequential)):
        return False
    kids = list(m.children())
    return (len(kids) >= 1 and len({type(k) for k in kids}) == 1
            and any(True for _ in kids[0].parameters()))


def _container(m):
    """A module whose work is done by a stack it holds (a Transformer around its resblocks)."""
    return _stack(m) or any(_stack(c) for c in m.children())


def capture_points(model):
    """Where activations are logged, found from the model's structure rather than from names, so
    every OpenCLIP tower type is covered (docs/hdf5-layout.md lists them per tower):
      - every block of every stack of blocks in a tower (RN50's Bottlenecks, the ViT and text
        transformers' residual blocks, a timm trunk's stages and their blocks);
      - every other direct child of a tower root that computes something: stems, embeddings,
        norms, attention pools, projection heads (RN50: conv1..act3, avgpool, attnpool; ViT:
        conv1, ln_pre, attn_pool, ln_post; text: token_embedding, ln_final; timm: stem, head).
    Tower roots: the image tower (`visual`, and a timm trunk inside it), the text tower
    (`text` of a CustomTextCLIP, or CLIP itself, whose own children are its text tower). For
    RN50 this is exactly cliprepro's CaptureTape set, which replay compares against."""
    modules = dict(model.named_modules())
    roots = [""] + [p for p, m in modules.items()
                    if p in ("visual", "text") or (p.startswith("visual.") and p.count(".") == 1
                                                   and p.endswith("trunk"))]
    points = set()
    for root in roots:
        for name, child in modules[root].named_children():
            path = f"{root}.{name}" if root else name
            if path in roots or type(child).__name__ in PASS_THROUGH:
                continue
            if not _container(child):
                points.add(path)
    for path, m in modules.items():  # every stack lies in a tower (the root "" holds them all)
        if _stack(m):
            points.update(f"{path}.{name}" for name, _ in m.named_children())
    return points


def persistent_buffers(model):
    """named_buffers() without non-persistent ones (CLIP's attn_mask): what a state_dict holds."""
    for mname, m in model.named_modules():
        for bname, b in m._buffers.items():
            if b is not None and bname not in m._non_persistent_buffers_set:
                yield (f"{mname}.{bname}" if mname else bname), b


class StepCapture:
    def __init__(self, model, loss, optimizer, scaler, entry_mode):
        """`model` is the unwrapped CLIP; `entry_mode(name, in_forward)` says how a tensor of the
        step being recorded is logged ("full", "digest" or "declare": log_write.Entry)."""
        self.model, self.optimizer, self.scaler = model, optimizer, scaler
        self.entry_mode = entry_mode
        self.names = {p: n for n, p in model.named_parameters()}
        self.new_step()
        self.points = capture_points(model)
        for path, m in model.named_modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.register_forward_hook(self._bn_hook(path, path in self.points))
            elif path in self.points:
                m.register_forward_hook(self._activation_hook(path))
        model.register_forward_pre_hook(self._model_pre_hook)
        model.register_forward_hook(self._model_hook)
        for side in ("image", "text"):
            self._wrap_encoder(side)
        original_get_logits = loss.get_logits

        def get_logits(*args, **kwargs):
            logits = original_get_logits(*args, **kwargs)
            if self._recording():
                self._add("activations/logits_per_image", "forward", logits[0])
                self._add("activations/logits_per_text", "forward", logits[1])
            return logits
        loss.get_logits = get_logits
        loss.register_forward_hook(self._loss_hook)
        optimizer.register_step_post_hook(lambda *_: self._optimizer_stepped())
        if scaler is not None:
            self._wrap_scaler_update()

    # -- per step -------------------------------------------------------------------------------
    def new_step(self):
        self.sample_ids, self.sample_keys, self.images, self.texts = [], [], [], []
        self.forward = []
        self.step_done, self.found_inf = False, None
        self.eval = []  # (name, float64 tensor): the zero-shot eval made after this step

    def add_batch(self, ids, batch, keys=None):
        """A micro-batch as the loader gave it: cliprepro logs the batch before the input cast of
        pure_* precisions (float32 images), the sample ids (and WebDataset keys) beside it."""
        self.sample_ids.append(torch.as_tensor(ids, dtype=torch.int64))
        if keys is not None:
            self.sample_keys.append(keys)
        self.images.append(batch[0].detach().clone())
        self.texts.append(batch[1].detach().clone())

    def _recording(self):
        return torch.is_grad_enabled() and self.model.training

    def _add(self, name, phase, t):
        # Digested now: an in-place op (ReLU) may reuse an activation later in the pass.
        self.forward.append(Entry(name, phase, t, self.entry_mode(name, True)))

    def _model_pre_hook(self, _module, _args):
        if self._recording():  # each grad pass: the log keeps the last micro-batch's forward
            self.forward = []

    def _model_hook(self, _module, _args, output):
        if self._recording():  # exp(logit_scale) as the forward used it, logged before the loss
            self.logit_scale = output["logit_scale"] if isinstance(output, dict) else output[2]

    def _activation_hook(self, path):
        def hook(_module, _inputs, output):
            if self._recording():  # digested now: an in-place ReLU may change it later
                self._add("activations/" + path, "forward", output)
        return hook

    def _bn_hook(self, path, is_capture_point):
        def hook(module, inputs, output):
            if not (self._recording() and module.training):
                return
            fn = output.grad_fn
            if fn is not None and hasattr(fn, "_saved_result1"):  # the statistics it normalised with
                mean, invstd = fn._saved_result1, fn._saved_result2
            else:
                with torch.no_grad():
                    _, mean, invstd = torch.ops.aten.native_batch_norm(
                        inputs[0], module.weight, module.bias, None, None, True, module.momentum,
                        module.eps)
            self._add(f"bn_batch/{path}.mean", "forward", mean)
            self._add(f"bn_batch/{path}.invstd", "forward", invstd)
            if is_capture_point:
                self._add("activations/" + path, "forward", output)
        return hook

    def _wrap_encoder(self, side):
        original = getattr(self.model, f"encode_{side}")

        def encode(*args, **kwargs):
            features = original(*args, **kwargs)
            if self._recording():
                self._add(f"activations/{side}_features", "forward", features)
            return features
        setattr(self.model, f"encode_{side}", encode)

    def _loss_hook(self, _module, _inputs, output):
        if not self._recording():
            return
        self._add("scalars/logit_scale", "forward", self.logit_scale)
        total = sum(output.values()) if isinstance(output, dict) else output
        self._add("scalars/loss", "forward", total)

    def _optimizer_stepped(self):
        self.step_done = True

    def _wrap_scaler_update(self):
        scaler, original = self.scaler, self.scaler.update

        def update(*args, **kwargs):
            state = scaler._per_optimizer_states[id(self.optimizer)]
            self.found_inf = sum(v.item() for v in state["found_inf_per_device"].values())
            self.step_done = True  # a skipped step (inf/NaN) is still a step
            return original(*args, **kwargs)
        scaler.update = update

    # -- the step's entries, after it (logit_scale clamped) --------------------------------------
    def step_entries(self):
        e = []
        add = lambda name, phase, t: e.append(Entry(name, phase, t, self.entry_mode(name),
                                                    now=False))
        add("data/sample_ids", "data", torch.cat(self.sample_ids))
        if self.sample_keys:
            add("data/sample_keys", "data", torch.cat(self.sample_keys))
        add("data/images", "data", torch.cat(self.images))
        add("data/texts", "data", torch.cat(self.texts))
        e += self.forward
        for name, p in reversed(list(self.model.named_parameters())):
            if p.grad is not None:
                add("grads/" + name, "backward", p.grad)
        groups = self.optimizer.param_groups
        add("scalars/lr", "optimizer", torch.tensor(groups[0]["lr"], dtype=torch.float64))
        if self.scaler is not None:
            add("scaler/found_inf", "optimizer", torch.tensor(float(self.found_inf or 0)))
        for name, g in zip(GROUP_NAMES, groups):
            add("optimizer/lr/" + name, "optimizer", torch.tensor(g["lr"], dtype=torch.float64))
        return e + self.state_entries(with_moments=True)

    def state_entries(self, with_moments):
        """Parameters, buffers (and moments, scaler) as they stand, then any eval of them."""
        e = []
        add = lambda name, phase, t: e.append(Entry(name, phase, t, self.entry_mode(name),
                                                    now=False))
        for name, b in persistent_buffers(self.model):
            add("buffers/" + name, "forward", b)
        if with_moments:
            for g in self.optimizer.param_groups:
                for p in g["params"]:
                    st = self.optimizer.state.get(p) or {  # none yet: every step so far was
                        "exp_avg": torch.zeros_like(p),     # skipped (GradScaler found inf);
                        "exp_avg_sq": torch.zeros_like(p),  # AdamW starts from these
                        "step": torch.tensor(0.0)}
                    for k in ("exp_avg", "exp_avg_sq", "step"):
                        add(f"optimizer/{k}/{self.names[p]}", "optimizer", st[k])
        for name, p in self.model.named_parameters():
            add("params/" + name, "optimizer", p)
        if self.scaler is not None:
            sc = self.scaler
            if sc._scale is None:  # made at the first scale(): step 0 logs what it will be
                add("scaler/scale", "optimizer", torch.full((), sc._init_scale, dtype=torch.float32))
                add("scaler/growth_tracker", "optimizer",
                    torch.full((), sc._init_growth_tracker, dtype=torch.int32))
            else:
                add("scaler/scale", "optimizer", sc._scale)
                add("scaler/growth_tracker", "optimizer", sc._growth_tracker)
        for name, t in self.eval:
            add(name, "eval", t)
        return e
