"""The ``mlp`` family: a ReLU feed-forward network trained with PyTorch (imported lazily).

Training is minibatch Adam on the mean loss (MSE on the standardized target for regression,
logistic loss for binary, cross-entropy for multiclass). After every optimizer step the
recipe's penalty applies its proximal map to the weight matrices, so l1 and group lasso make
exact zeros and l2 is decoupled weight decay. Early stopping on the validation loss keeps the
best epoch. Everything random (initialization, shuffling, dropout masks) draws from one
``torch.Generator`` seeded with ``ctx.seed``, never from torch's global generator, so a fit is
bitwise reproducible on CPU even when several trials run in threads.

The fitted weights are plain numpy (inputs x outputs, float32 or quantized) in model units:
for regression the target's mean and scale are folded into the last layer. :meth:`decision`
computes with exactly the values the export stores.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..export import Quantized
from ..model import pow2_scale
from ..model_mlp import without_dead_units
from ..technique import MLPContext, TrainConfig

DEFAULT_HIDDEN = (128, 64)

#: Training settings; ``options`` given to :meth:`MLPFamily.context` may override any of them
#: (``hidden`` too). Chosen on digits (1,150 training rows) on 2 CPU cores: a trial trains in
#: 0.2-2 s (most stop after 15-60 epochs), and lr / batch sizes from 1e-3 / 64 to 1e-2 / 256
#: reached the same validation loss within noise, this one among the fastest.
DEFAULTS = {
    "lr": 3e-3,             # Adam step size (also the prox step)
    "batch_size": 128,      # rows per step; batches are equal-sized splits of a shuffle
    "max_epochs": 200,      # upper bound with validation rows
    "patience": 10,         # epochs without a better validation loss before stopping
    "final_epochs": 30,     # without validation rows and no fold fits to take a median from
    "fine_tune_epochs": 10,  # CompressContext.fine_tune(weights) with epochs=None
    "init_scale": 0.3,      # multiplies the He-uniform bound of the initial weights
    "threads": 1,           # torch intra-op threads while training (0: leave torch's setting)
}
#: The fused Adam kernel: a third faster than the per-tensor loop on the digits network.
_ADAM: dict = {"fused": True}
_TIE = 1e-3  # validation losses within this fraction of the best count as equally good
_EVAL_CELLS = 1 << 21  # rows x features per dense evaluation batch (8 MiB of float32)


def _eval_rows(n_features: int) -> int:
    return max(16, min(4096, _EVAL_CELLS // max(n_features, 1)))


@dataclass
class MLPFit:
    """A trained network: per layer a weight matrix (inputs x outputs) and a bias vector.

    ``weights`` entries are float32 arrays or :class:`~autoreg.export.Quantized` (kept for the
    export; the model computes with their dequantized values). Everything is in model units:
    for regression the target's standardization (``y_mean``, ``y_scale``) is already folded
    into the last layer.
    """

    weights: list
    biases: list  # float64 vectors
    best_epoch: int
    epochs_run: int
    y_mean: float = 0.0
    y_scale: float = 1.0
    seconds: float = 0.0
    history: list = field(default_factory=list, repr=False)  # validation loss per epoch
    #: Per input feature, how much larger its first-layer weights are on standardized features
    #: than on features scaled by a power of two (``autoreg.model.pow2_scale``), the space
    #: compression sees the first layer in: quantized codes there are exactly reproducible by
    #: the export. None: 1 for every feature.
    pscale: np.ndarray | None = field(default=None, repr=False)

    def values(self) -> list[np.ndarray]:
        """The weight values the model computes with, on standardized features."""
        out = []
        for i, w in enumerate(self.weights):
            if isinstance(w, Quantized):
                w = w.dequantize()
                if i == 0 and self.pscale is not None:
                    w = w.astype(np.float64) * self.pscale[:, None]
            out.append(w)
        return out

    def _factor(self, n: int) -> np.ndarray:
        return (np.ones(n) if self.pscale is None else self.pscale)[:, None]

    def compression_weights(self) -> list[np.ndarray]:
        """float64 weights as compression sees them (first layer on power-of-two scaled
        features)."""
        ws = [np.asarray(v, dtype=np.float64) for v in self.values()]
        ws[0] = ws[0] / self._factor(ws[0].shape[0])
        return ws

    def from_compression(self, weights) -> list:
        """The inverse of :meth:`compression_weights`: arrays become float32 on standardized
        features; ``Quantized`` tensors stay as they are (the export reads them in that
        space)."""
        out = []
        for i, w in enumerate(weights):
            if not isinstance(w, Quantized):
                w = np.asarray(w, dtype=np.float64)
                if i == 0:
                    w = w * self._factor(w.shape[0])
                w = w.astype(np.float32)
            out.append(w)
        return out


@dataclass(frozen=True)
class _Context(MLPContext):
    """The technique context plus this family's training settings."""

    options: dict = field(default_factory=dict, compare=False, repr=False)


def _device():
    import torch

    if os.environ.get("AUTOREG_DEVICE", "").lower() != "cpu" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


class _Threads:
    """Run torch with ``n`` intra-op threads inside the block (0: unchanged).

    A network of this size spends its time in dispatch, not arithmetic: one thread trains the
    digits network faster than two and leaves the other core to a parallel trial, and a fixed
    count keeps floating-point reductions, hence results, the same on every machine. The
    setting is process-wide, so trials running in threads share it: the first to enter sets
    it, the last to leave restores what it was.
    """

    _lock = threading.Lock()
    _active = 0
    _before = 0

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        import torch

        if not self.n:
            return
        with _Threads._lock:
            if _Threads._active == 0:
                _Threads._before = torch.get_num_threads()
                if _Threads._before != self.n:
                    torch.set_num_threads(self.n)
            _Threads._active += 1

    def __exit__(self, *exc):
        import torch

        if not self.n:
            return
        with _Threads._lock:
            _Threads._active -= 1
            if _Threads._active == 0 and torch.get_num_threads() != _Threads._before:
                torch.set_num_threads(_Threads._before)


class _Data:
    """Training or validation rows on the device: a float32 tensor, or CSR rows whose minibatches
    are made dense one batch at a time."""

    def __init__(self, X, y, task: str, y_mean: float, y_scale: float, device):
        import torch

        self.sparse = sp.issparse(X)
        self.n = X.shape[0]
        self.device = device
        if self.sparse:
            self.X = sp.csr_matrix(X)
            self.X_t = None
        else:
            self.X_t = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
        if task == "regression":
            yt = (np.asarray(y, dtype=np.float64) - y_mean) / y_scale
            self.y = torch.as_tensor(yt.astype(np.float32).reshape(-1, 1), device=device)
        elif task == "binary":
            self.y = torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(-1, 1),
                                     device=device)
        else:
            self.y = torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)

    def rows(self, idx):
        """Dense float32 rows ``idx`` (a CPU index tensor or a slice) and their targets."""
        import torch

        if self.X_t is not None:
            return self.X_t[idx], self.y[idx]
        sel = idx if isinstance(idx, slice) else idx.numpy()
        xb = self.X[sel].toarray().astype(np.float32, copy=False)
        return torch.from_numpy(xb).to(self.device), self.y[idx]


def _loss_fn(task: str):
    import torch.nn.functional as F

    if task == "regression":
        return F.mse_loss
    if task == "binary":
        return F.binary_cross_entropy_with_logits
    return F.cross_entropy


def _forward(Ws, bs, x, dropout_in=0.0, dropout_hidden=0.0, gen=None):
    import torch

    if dropout_in > 0:
        x = x * torch.empty_like(x).bernoulli_(1.0 - dropout_in, generator=gen) \
            / (1.0 - dropout_in)
    last = len(Ws) - 1
    for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        x = torch.addmm(b, x, W)
        if i < last:
            x = torch.relu(x)
            if dropout_hidden > 0:
                x = x * torch.empty_like(x).bernoulli_(1.0 - dropout_hidden, generator=gen) \
                    / (1.0 - dropout_hidden)
    return x


def _evaluate(Ws, bs, data: _Data, loss) -> float:
    import torch

    total = 0.0
    rows = _eval_rows(Ws[0].shape[0])
    with torch.no_grad():
        for start in range(0, data.n, rows):
            sl = slice(start, min(start + rows, data.n))
            xb, yb = data.rows(sl)
            out = _forward(Ws, bs, xb)
            total += float(loss(out, yb, reduction="sum"))
    return total / max(data.n, 1)


def _init_params(sizes, gen, device, scale=1.0):
    """He-uniform weights for the hidden layers, a smaller scale for the output layer; zero
    biases. Drawn from ``gen`` so that the global torch generator is never touched."""
    import torch

    Ws, bs = [], []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        gain = 6.0 if i < len(sizes) - 2 else 1.0
        bound = scale * float(np.sqrt(gain / max(fan_in, 1)))
        W = (torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound
        Ws.append(W.to(device))
        bs.append(torch.zeros(fan_out, device=device))
    return Ws, bs


def _train_loop(Ws, bs, recipe, ctx: MLPContext, cfg: TrainConfig, opts: dict, data: _Data,
                val: _Data | None, epochs: int, patience: int | None, gen, masks=None,
                score_start: bool = False):
    """Train ``Ws``/``bs`` (tensors, replaced by the best state on return when ``val``).

    Returns ``(Ws, bs, best_epoch, epochs_run, history)``.
    """
    import torch

    for p in (*Ws, *bs):
        p.requires_grad_(True)
    loss = _loss_fn(ctx.task)
    lr = float(opts["lr"])
    try:
        opt = torch.optim.Adam([*Ws, *bs], lr=lr, **_ADAM)
    except (RuntimeError, TypeError, ValueError):  # a torch or device without the fused kernel
        opt = torch.optim.Adam([*Ws, *bs], lr=lr)
    n = data.n
    n_batches = max(1, -(-n // int(opts["batch_size"])))
    penalty = recipe.penalty
    # Dropout masks are drawn on the device the activations live on.
    dropout_gen = gen if data.device.type == "cpu" else \
        torch.Generator(device=data.device).manual_seed(int(gen.initial_seed()))
    history = []
    # ``best`` is the lowest validation loss so far; the state kept is the LAST one within
    # ``_TIE`` of it: among practically equal losses, the one that had the penalty applied
    # longest (sparser, smaller). Patience counts from the last epoch that improved by more
    # than ``_TIE`` on ``ref`` (the loss at the previous such epoch), so a network creeping
    # along a plateau stops.
    best, ref, improved, best_epoch, best_state = np.inf, np.inf, 0, 0, None
    if val is not None and score_start:
        best = ref = _evaluate(Ws, bs, val, loss)
        best_state = [p.detach().clone() for p in (*Ws, *bs)]
    epoch = 0
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=gen)
        for idx in torch.tensor_split(perm, n_batches):
            xb, yb = data.rows(idx)
            out = _forward(Ws, bs, xb, cfg.dropout_input, cfg.dropout_hidden, dropout_gen)
            opt.zero_grad(set_to_none=True)
            loss(out, yb).backward()
            opt.step()
            if penalty is not None or masks is not None:
                with torch.no_grad():
                    if penalty is not None:
                        penalty.mlp_prox(Ws, lr, ctx)
                    if masks is not None:
                        for W, m in zip(Ws, masks, strict=True):
                            W.mul_(m)
        if val is None:
            continue
        v = _evaluate(Ws, bs, val, loss)
        history.append(v)
        if not np.isfinite(v):
            break  # diverged: keep the best state so far, if any
        if v < ref - _TIE * abs(ref) or ref == np.inf:
            ref, improved = v, epoch
        best = min(best, v)
        if v <= best + _TIE * abs(best):
            best_epoch = epoch
            best_state = [p.detach().clone() for p in (*Ws, *bs)]
        if patience is not None and epoch - improved >= patience:
            break
    params = [p.detach() for p in (*Ws, *bs)]
    if val is None:
        best_epoch = epoch
    elif best_state is not None:
        params = best_state
    k = len(Ws)
    return params[:k], params[k:], best_epoch, epoch, history


class MLPFamily:
    name = "mlp"
    default_hidden = DEFAULT_HIDDEN
    #: What a technique of each stage must implement to act on this family.
    needs = {"penalty": "mlp_prox", "training": "mlp_configure", "compression": "compress"}
    #: With a holdout split the model early-stopped on the holdout rows is the one shipped.
    refit_after_holdout = False

    # -- contexts ---------------------------------------------------------------------------
    def context(self, X, y, task: str, n_classes: int, seed: int, groups=None,
                options=None) -> MLPContext:
        options = dict(options or {})
        hidden = tuple(options.pop("hidden", DEFAULT_HIDDEN))
        if not hidden or not all(isinstance(h, (int, np.integer)) and h > 0 for h in hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive ints, got {hidden!r}")
        unknown = sorted(set(options) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown mlp option {unknown[0]!r}; known: hidden, "
                             + ", ".join(DEFAULTS))
        n_features = X.shape[1]
        if groups is None:
            groups = np.arange(n_features)
        return _Context(task=task, n_samples=X.shape[0], n_features=n_features,
                        n_out=n_classes if task == "multiclass" else 1,
                        hidden=tuple(int(h) for h in hidden), seed=int(seed),
                        groups=np.asarray(groups), options={**DEFAULTS, **options})

    @staticmethod
    def fold_context(ctx: MLPContext, X, y, groups) -> MLPContext:
        if groups is None:
            groups = np.arange(X.shape[1])
        return dataclasses.replace(ctx, n_samples=X.shape[0], n_features=X.shape[1],
                                   groups=np.asarray(groups))

    @staticmethod
    def _opts(ctx: MLPContext) -> dict:
        return getattr(ctx, "options", None) or DEFAULTS

    # -- training ---------------------------------------------------------------------------
    @staticmethod
    def _config(recipe, ctx: MLPContext) -> TrainConfig:
        cfg = TrainConfig()
        for tech in recipe.training:
            tech.mlp_configure(cfg, ctx)
        return cfg

    def train(self, recipe, ctx: MLPContext, X, y, X_val=None, y_val=None, init=None,
              fold_fits=()) -> MLPFit:
        """Fit the network; ``init`` (a fit at nearby penalty strengths) is not used: a
        network started from another optimum early-stops on that optimum's terms."""
        import torch

        opts = self._opts(ctx)
        t0 = time.perf_counter()
        with _Threads(int(opts["threads"])):
            device = _device()
            gen = torch.Generator().manual_seed(ctx.seed)
            y_mean, y_scale = _target_scale(ctx.task, y)
            data = _Data(X, y, ctx.task, y_mean, y_scale, device)
            val = None if X_val is None else _Data(X_val, y_val, ctx.task, y_mean, y_scale,
                                                   device)
            sizes = (X.shape[1], *ctx.hidden, ctx.n_out)
            Ws, bs = _init_params(sizes, gen, device, float(opts["init_scale"]))
            # A feature that is zero on every training row gets no gradient: its random
            # weights would stay as drawn and keep it in the model for nothing.
            unused = np.flatnonzero(~_used_features(X))
            if len(unused):
                Ws[0][torch.as_tensor(unused, device=device)] = 0.0
            if val is not None:
                epochs, patience = int(opts["max_epochs"]), int(opts["patience"])
            else:
                done = [f.best_epoch for f in fold_fits if getattr(f, "best_epoch", 0) > 0]
                epochs = max(1, int(round(np.median(done)))) if done \
                    else int(opts["final_epochs"])
                patience = None
            Ws, bs, best_epoch, run, hist = _train_loop(
                Ws, bs, recipe, ctx, self._config(recipe, ctx), opts, data, val, epochs,
                patience, gen)
        fit = _to_fit(Ws, bs, best_epoch, run, y_mean, y_scale, time.perf_counter() - t0, hist)
        scale = getattr(ctx, "feature_scale", None)
        if scale is not None:
            fit.pscale = pow2_scale(scale)
        return fit

    def fine_tune(self, fit: MLPFit, weights, epochs, recipe, ctx: MLPContext, X, y,
                  X_val=None, y_val=None) -> MLPFit:
        """Train on from ``weights`` (as :meth:`get_weights` gives them) with their zeros held at
        zero; with validation rows, keep the best state (the starting one included)."""
        import torch

        opts = self._opts(ctx)
        epochs = int(opts["fine_tune_epochs"] if epochs is None else epochs)
        values = dataclasses.replace(fit, weights=fit.from_compression(weights)).values()
        t0 = time.perf_counter()
        with _Threads(int(opts["threads"])):
            device = _device()
            gen = torch.Generator().manual_seed(ctx.seed + 1)
            Ws, bs = _to_training_units(values, fit.biases, fit.y_mean, fit.y_scale, device)
            masks = [(W != 0).to(W.dtype) for W in Ws]
            data = _Data(X, y, ctx.task, fit.y_mean, fit.y_scale, device)
            val = None if X_val is None else _Data(X_val, y_val, ctx.task, fit.y_mean,
                                                   fit.y_scale, device)
            Ws, bs, best_epoch, run, hist = _train_loop(
                Ws, bs, recipe, ctx, self._config(recipe, ctx), opts, data, val, epochs, None,
                gen, masks=masks, score_start=True)
        new = _to_fit(Ws, bs, fit.best_epoch, fit.epochs_run, fit.y_mean, fit.y_scale,
                      fit.seconds + time.perf_counter() - t0, fit.history)
        new.pscale = fit.pscale
        return new

    # -- weights ----------------------------------------------------------------------------
    @staticmethod
    def get_weights(fit: MLPFit) -> list[np.ndarray]:
        """float64, inputs x outputs; the first layer on features scaled by a power of two
        rather than standardized (within a factor 1.42), as ``autoreg.model.pow2_scale``
        describes, so that quantized codes of it export exactly."""
        return fit.compression_weights()

    @staticmethod
    def set_weights(fit: MLPFit, weights) -> MLPFit:
        """A fit with ``weights`` (as :meth:`get_weights` gives them: arrays or ``Quantized``)."""
        if len(weights) != len(fit.weights):
            raise ValueError(f"expected {len(fit.weights)} weight matrices, got {len(weights)}")
        for w, old in zip(weights, fit.weights, strict=True):
            if tuple(np.shape(w) if not isinstance(w, Quantized) else w.shape) != old.shape:
                raise ValueError(f"weight shape {tuple(w.shape)} != {tuple(old.shape)}")
        weights, biases = _canonical(fit.from_compression(weights), fit.biases)
        return dataclasses.replace(fit, weights=weights, biases=biases)

    @staticmethod
    def weights(fit: MLPFit) -> list[np.ndarray]:
        return fit.values()

    # -- predicting -------------------------------------------------------------------------
    @staticmethod
    def decision(fit: MLPFit, X) -> np.ndarray:
        """Raw outputs (samples x outputs) on preprocessed rows, in numpy, in batches."""
        Ws = [v.astype(np.float64) for v in fit.values()]
        bs = [np.asarray(b, dtype=np.float64) for b in fit.biases]
        n, rows = X.shape[0], _eval_rows(X.shape[1])
        out = np.empty((n, Ws[-1].shape[1]))
        for start in range(0, n, rows):
            h = X[start: start + rows]
            for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
                h = np.asarray(h @ W) + b
                if i < len(Ws) - 1:
                    np.maximum(h, 0.0, out=h)
            out[start: start + rows] = h
        return out

    @staticmethod
    def predictor(fit: MLPFit, prep, task: str, classes):
        from ..model_mlp import MLPPredictor

        if isinstance(fit.weights[0], Quantized):
            want = pow2_scale(prep.feature_scale())
            if fit.pscale is None or not np.array_equal(fit.pscale, want):
                raise ValueError("a quantized first layer must be trained with the context's "
                                 "feature_scale set from this prep")
        return MLPPredictor.from_fit(prep, fit.weights, fit.biases, task, classes)


def _used_features(X) -> np.ndarray:
    """Whether each column has a non-zero value in some row."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        used = np.zeros(X.shape[1], dtype=bool)
        used[X.indices[X.data != 0]] = True
        return used
    return np.any(np.asarray(X) != 0, axis=0)


def _target_scale(task: str, y) -> tuple[float, float]:
    if task != "regression":
        return 0.0, 1.0
    y = np.asarray(y, dtype=np.float64)
    sd = float(y.std())
    return float(y.mean()), (sd if sd > 0 and np.isfinite(sd) else 1.0)


def _to_fit(Ws, bs, best_epoch, epochs_run, y_mean, y_scale, seconds, history) -> MLPFit:
    """Numpy weights in model units: the target's scale folded into the last layer."""
    weights = [W.detach().cpu().numpy().astype(np.float32) for W in Ws]
    biases = [b.detach().cpu().numpy().astype(np.float64) for b in bs]
    if y_mean != 0.0 or y_scale != 1.0:
        weights[-1] = (weights[-1].astype(np.float64) * y_scale).astype(np.float32)
        biases[-1] = biases[-1] * y_scale + y_mean
    weights, biases = _canonical(weights, biases)
    return MLPFit(weights, biases, int(best_epoch), int(epochs_run), y_mean, y_scale, seconds,
                  list(history))


def _canonical(weights, biases):
    """Dead hidden units zeroed (constant ones folded into the next bias), as the export
    removes them: the zeros that count toward sparsity are then those of the shipped model.
    Hidden biases are rounded to float32, as the export stores them."""
    weights, biases = without_dead_units(weights, biases)
    last = len(biases) - 1
    return weights, [b if i == last else b.astype(np.float32).astype(np.float64)
                     for i, b in enumerate(biases)]


def _to_training_units(values, biases, y_mean, y_scale, device):
    import torch

    values = [np.array(v, dtype=np.float32) for v in values]
    biases = [np.asarray(b, dtype=np.float64) for b in biases]
    if y_mean != 0.0 or y_scale != 1.0:
        values[-1] = (values[-1].astype(np.float64) / y_scale).astype(np.float32)
        biases[-1] = (biases[-1] - y_mean) / y_scale
    Ws = [torch.as_tensor(v, device=device) for v in values]
    bs = [torch.as_tensor(b.astype(np.float32), device=device) for b in biases]
    return Ws, bs
