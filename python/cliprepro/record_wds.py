"""Recording OpenCLIP's WebDataset pipeline (`--dataset-type webdataset`, with or without
`--dataset-resampled`): each batch is logged as the model received it, with each sample's
`__key__` (data/sample_keys) and an id saying where it sits in the shards (data/sample_ids).

OpenCLIP builds the pipeline in open_clip_train.data.get_wds_dataset; the recorder wraps that
function and edits the built pipeline in two places, before any worker starts:
- after `tarfile_to_samples_nothrow`, each sample gets `__id__` = shard << 32 | index: the shard's
  position in the expanded --train-data list, and the sample's position within that shard;
- `to_tuple("image", "text")` also takes `__key__` and `__id__`, so they travel with the batch
  through the loader's worker processes.
The loader then hands OpenCLIP (images, texts) exactly as before. Neither edit draws a random
number or touches a sample's image or text, so the run is the one OpenCLIP makes without the
recorder (tests/observer_effect.py checks a checkpoint bit for bit).
"""
import functools

from .record_args import RecordError

KEY_BYTES = 256  # width of a data/sample_keys row: the key in UTF-8, NUL-padded


class ShardUrl(str):
    """A shard's url that also carries which shard this worker opened it as (`seq`): samples are
    numbered within their shard even when a resampled stream draws one shard twice in a row."""

    def __new__(cls, url, seq):
        s = super().__new__(cls, url)
        s.seq = seq
        return s

    def __reduce__(self):  # a sample that crosses to another process keeps its mark
        return ShardUrl, (str(self), self.seq)


def numbered_samples(shards, handler, tarfile_to_samples, ordinals):
    """OpenCLIP's tarfile_to_samples_nothrow with each sample's `__id__` added. The shards are
    marked (ShardUrl) on the way in; OpenCLIP's grouping copies the mark into `__url__`."""
    def marked(src):
        for seq, shard in enumerate(src):
            shard["url"] = ShardUrl(shard["url"], seq)
            yield shard

    seq, index = None, 0
    for sample in tarfile_to_samples(marked(shards), handler=handler):
        url = sample["__url__"]
        seq, index = (url.seq, 0) if url.seq != seq else (seq, index + 1)
        if str(url) not in ordinals:
            raise RecordError(f"shard {url} is not in the --train-data list")
        sample["__id__"] = (ordinals[str(url)] << 32) | index
        sample["__url__"] = str(url)
        yield sample


def key_rows(keys, ids):
    """(B, KEY_BYTES) uint8: each key in UTF-8, NUL-padded."""
    import torch
    rows = torch.zeros((len(keys), KEY_BYTES), dtype=torch.uint8)
    for r, key in enumerate(keys):
        b = key.encode("utf-8")
        if len(b) > KEY_BYTES:
            raise RecordError(f"sample key {key!r} (shard {int(ids[r]) >> 32}) is {len(b)} bytes "
                              f"in UTF-8; data/sample_keys holds at most {KEY_BYTES}")
        rows[r, :len(b)] = torch.frombuffer(bytearray(b), dtype=torch.uint8)
    return rows


class RecordingWebLoader:
    """OpenCLIP's WebLoader, whose batches carry the recorder's two extra fields: it gives
    OpenCLIP the batch it built and the recorder the sample ids and keys."""
    on_batch = None

    def __init__(self, inner):
        self.inner = inner
        self.num_batches, self.num_samples = inner.num_batches, inner.num_samples

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __iter__(self):
        import torch
        for i, batch in enumerate(self.inner):
            keys, ids = batch[2], torch.as_tensor(batch[3], dtype=torch.int64)
            batch = batch[:2]  # OpenCLIP's own (images, texts), as the same type
            if self.on_batch is not None:
                self.on_batch(i, ids, batch, key_rows(keys, ids))
            yield batch


def _stage_index(stages, match, what):
    found = [i for i, s in enumerate(stages) if match(s)]
    if len(found) != 1:
        raise RecordError(f"OpenCLIP's WebDataset pipeline has {len(found)} {what} stages "
                          "(the recorder expects one: was open_clip_train updated?)")
    return found[0]


def recording_wds_dataset(original):
    """Wraps open_clip_train.data.get_wds_dataset: the training pipeline it builds, edited as
    the module docstring says."""
    import open_clip_train.data as ocd
    import webdataset as wds
    from webdataset.filters import _to_tuple

    def get_wds_dataset(args, preprocess_img, is_train, epoch=0, floor=False, tokenizer=None):
        info = original(args, preprocess_img, is_train, epoch=epoch, floor=floor,
                        tokenizer=tokenizer)
        if not is_train:
            return info
        stages = info.dataloader.pipeline[0].dataset.pipeline  # WebLoader -> DataLoader
        urls, _ = ocd.expand_urls(args.train_data)
        ordinals = {u: i for i, u in enumerate(urls)}
        t = _stage_index(stages, lambda s: s is ocd.tarfile_to_samples_nothrow,
                         "tarfile_to_samples_nothrow")
        stages[t] = functools.partial(numbered_samples, handler=ocd.log_and_continue,
                                      tarfile_to_samples=ocd.tarfile_to_samples_nothrow,
                                      ordinals=ordinals)
        t = _stage_index(stages, lambda s: getattr(s, "f", None) is _to_tuple
                         and tuple(s.args) == ("image", "text"), 'to_tuple("image", "text")')
        stages[t] = wds.to_tuple("image", "text", "__key__", "__id__")
        info.dataloader = RecordingWebLoader(info.dataloader)
        return info
    return get_wds_dataset


def install():
    import open_clip_train.data as ocd
    ocd.get_wds_dataset = recording_wds_dataset(ocd.get_wds_dataset)
