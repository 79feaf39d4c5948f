"""A small recurrent (GRU) language model of system-call traces in plain numpy.

:class:`GruCallModel` learns, from normal traces only, a distribution over the next system call
given every call before it in the trace (not just the last few, as the n-gram model does), the
route of Kim et al. 2016 ("LSTM-based system-call language modeling and robust ensemble method").
A trace scores its mean surprise (negative log-likelihood per call), like
:class:`~mamori.detect.anomaly.syscalls.NgramSequenceModel`.

Why numpy by hand: torch is too heavy a dependency for the pip install. Training is truncated
back-propagation through time over many parallel streams of the concatenated training traces (the
hidden state is reset where a trace starts), so each time step is a few matrix products over the
batch; the input projections and the output layer are done for a whole window at once. Adam with
gradient-norm clipping; float32 for speed (float64 for the gradient check in the tests).

Measured on ADFA-LD (train on the 833 normal training traces, score the 4,372 validation normals and
746 attacks; benchmarks/anomaly.py adfa-ld prints the default's figure): it does not beat the n-gram
model (0.842 AUC), so :class:`~mamori.detect.anomaly.syscalls.TraceAnomalyModel` leaves it out. Sizes
were chosen on 167 training traces held out (nats per call: hidden 128 / 20 epochs 1.094, hidden 200
/ 20 epochs 1.029; the order-5..7 n-gram models 1.23-1.27): the GRU predicts unseen normal traces
better, yet ranks attacks worse. Validation runs (each setting once; the standard error of these AUCs
is about 0.008), 61 scores in all counting each combination:

- mean surprise per call, hidden 128, embedding 32, 20 epochs (about 2.5-4.5 min to train on one
  loaded core, 25-70 s to score the 5,118 traces), seeds 0/1/2: 0.824 / 0.832 / 0.836 (12-14 % and
  21-34 % of attacks caught at 1 % and 5 % false alarms); hidden 200: 0.835 (16 % and 32 %; 7 min to
  train); the mean of the three seeds' scores 0.830, of all four 0.832 (an ensemble of equals does
  not help);
- other trace scores from the seed-0 model: the first 10 / 30 calls only 0.785 / 0.815, all but the
  first 10 / 30 / 100 calls 0.823 / 0.822 / 0.812; surprise minus a unigram model's 0.774, divided by
  it 0.816; minus the order-2/3/4 n-gram model's 0.730 / 0.543 / 0.312 (divided 0.821 / 0.788 /
  0.626; for the order-7 n-gram model minus them 0.844 / 0.839 / 0.828);
- nearest training trace (cosine) by the trace's hidden states, averaged 0.666 (5 nearest 0.682),
  element-wise maximum 0.834 (0.821), both 0.813 (0.809);
- rank sums over the validation traces (an optimistic way of adding) with the existing parts: GRU +
  n-gram 0.834 (hidden 200: 0.840), GRU + call set 0.859 (0.863), GRU + n-gram + call set 0.854
  (0.857; the mean of the seeds in place of the GRU 0.837 / 0.862 / 0.857), against 0.866 for
  n-gram + call set added the same way; the maximum-state neighbour distance + n-gram + call set
  0.870 (+ GRU 0.861): within the noise, for a model to train per baseline;
- the GRU's and the order-7 n-gram model's next-call probabilities mixed half-and-half (a better
  language model than either), mean surprise 0.836 (hidden 200: 0.843), + call set 0.863 (0.866);
- Kim et al.'s recipe, an LSTM in torch 2.13 (CPU, one thread; explored, not a dependency):
  embedding 32, one LSTM layer, dropout 0.5 before the softmax, Adam (1e-3), batches of 16 whole
  traces, stopped on 83 held-out training traces; mean surprise per call. 200 units, 40 epochs
  (held-out loss 1.02 nats per call averaged over traces, still falling; 581 s to train and 29 s to
  score on a shared, loaded core): 0.832 (16 % / 34 % of attacks at 1 % / 5 % false alarms); 400
  units, 30 epochs (0.96; 1,123 s and 58 s): 0.831 (13 % / 31 %). Their "robust ensemble" (each
  model's score as its rank among the held-out training traces, the smaller rank kept) 0.832, the
  ranks added 0.832, mean surprises added 0.832; the smallest of the two LSTMs', the n-gram model's
  and the call set's ranks 0.847; 200 units + call set 0.855 (added as validation ranks 0.862),
  + n-gram + call set 0.854. The stored sources gave only the paper's abstract, so whether its
  0.928 used this split could not be checked.

The number of distinct calls alone scores 0.810. As with the n-gram model, normal programs absent
from the training traces look as novel as attacks; a better language model of the training programs
does not change that.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_START = 0  # input token that opens every trace
_UNKNOWN = 1  # a call never seen in training
_FLOOR = 1e-3  # share of probability spread over all 512 possible calls, so unseen calls stay finite
_BASE = 512

Trace = NDArray[np.int64]
Array = NDArray[np.floating]
_PARAMS = ("embed", "w_x", "b_x", "w_h", "b_h", "w_out", "b_out")


def _sigmoid(x: Array) -> Array:
    out: Array = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


class GruCallModel:
    """GRU next-call language model: embedding -> one GRU layer -> softmax over the known calls.

    ``embed`` and ``hidden`` size the model; training runs ``epochs`` passes over the concatenated
    normal traces cut into ``streams`` parallel streams, back-propagating through ``window`` steps.
    """

    def __init__(
        self,
        embed: int = 32,
        hidden: int = 128,
        epochs: int = 20,
        streams: int = 64,
        window: int = 64,
        learning_rate: float = 3e-3,
        clip: float = 1.0,
        seed: int = 0,
        dtype: type[np.floating] = np.float32,
    ) -> None:
        self.embed = embed
        self.hidden = hidden
        self.epochs = epochs
        self.streams = streams
        self.window = window
        self.learning_rate = learning_rate
        self.clip = clip
        self.seed = seed
        self.dtype = dtype
        self.vocab: NDArray[np.int64] = np.zeros(0, dtype=np.int64)  # syscall number of token 2, 3, ...
        self.params: dict[str, Array] = {}
        self.history: list[float] = []  # mean training loss (nats per call) of each epoch

    # -- vocabulary -------------------------------------------------------------------------------

    def _tokens(self, trace: Trace) -> NDArray[np.int64]:
        calls = np.asarray(trace, dtype=np.int64)
        idx = np.searchsorted(self.vocab, calls)
        idx[idx >= len(self.vocab)] = 0
        known = self.vocab[idx] == calls if len(self.vocab) else np.zeros(len(calls), dtype=bool)
        return np.where(known, idx + 2, _UNKNOWN)

    def _init_params(self, size: int) -> None:
        rng = np.random.default_rng(self.seed)
        e, h = self.embed, self.hidden

        def uniform(shape: tuple[int, ...], fan_in: int) -> Array:
            bound = 1.0 / np.sqrt(fan_in)
            return rng.uniform(-bound, bound, shape).astype(self.dtype)

        self.params = {
            "embed": (rng.standard_normal((size, e)) * 0.1).astype(self.dtype),
            "w_x": uniform((e, 3 * h), e),
            "b_x": np.zeros(3 * h, dtype=self.dtype),
            "w_h": uniform((h, 3 * h), h),
            "b_h": np.zeros(3 * h, dtype=self.dtype),
            "w_out": uniform((h, size), h),
            "b_out": np.zeros(size, dtype=self.dtype),
        }

    # -- forward and backward over one window -----------------------------------------------------

    def _forward(self, inputs: NDArray[np.int64], keep: Array, h0: Array) -> tuple[Array, dict[str, Array]]:
        """Run the GRU over ``inputs`` (steps x batch); ``keep[t]`` is 0 where the state resets."""
        p = self.params
        steps, batch = inputs.shape
        h = self.hidden
        x = p["embed"][inputs]
        gx = x @ p["w_x"] + p["b_x"]
        states = np.empty((steps + 1, batch, h), dtype=self.dtype)
        prev = np.empty((steps, batch, h), dtype=self.dtype)
        z = np.empty((steps, batch, h), dtype=self.dtype)
        r = np.empty_like(z)
        n = np.empty_like(z)
        hn = np.empty_like(z)
        states[0] = h0
        for t in range(steps):
            hp = states[t] * keep[t][:, None]
            prev[t] = hp
            gh = hp @ p["w_h"] + p["b_h"]
            z[t] = _sigmoid(gx[t, :, :h] + gh[:, :h])
            r[t] = _sigmoid(gx[t, :, h : 2 * h] + gh[:, h : 2 * h])
            hn[t] = gh[:, 2 * h :]
            n[t] = np.tanh(gx[t, :, 2 * h :] + r[t] * hn[t])
            states[t + 1] = n[t] + z[t] * (hp - n[t])
        cache = {"x": x, "prev": prev, "z": z, "r": r, "n": n, "hn": hn, "keep": keep}
        return states[1:], cache

    def _backward(self, d_states: Array, cache: dict[str, Array], inputs: NDArray[np.int64]) -> dict[str, Array]:
        """Gradients of the GRU parameters given the loss gradient at every output state."""
        p = self.params
        h = self.hidden
        steps, batch, _ = d_states.shape
        z, r, n, hn, prev, keep = cache["z"], cache["r"], cache["n"], cache["hn"], cache["prev"], cache["keep"]
        d_gx = np.empty((steps, batch, 3 * h), dtype=self.dtype)
        d_gh = np.empty((steps, batch, 3 * h), dtype=self.dtype)
        carry = np.zeros((batch, h), dtype=self.dtype)
        w_h_t = p["w_h"].T
        for t in range(steps - 1, -1, -1):
            dh = d_states[t] + carry
            dn = dh * (1.0 - z[t])
            dz = dh * (prev[t] - n[t])
            da_n = dn * (1.0 - n[t] * n[t])
            dr = da_n * hn[t]
            d_gx[t, :, :h] = d_gh[t, :, :h] = dz * z[t] * (1.0 - z[t])
            d_gx[t, :, h : 2 * h] = d_gh[t, :, h : 2 * h] = dr * r[t] * (1.0 - r[t])
            d_gx[t, :, 2 * h :] = da_n
            d_gh[t, :, 2 * h :] = da_n * r[t]
            carry = (dh * z[t] + d_gh[t] @ w_h_t) * keep[t][:, None]
        flat_gx = d_gx.reshape(-1, 3 * h)
        flat_gh = d_gh.reshape(-1, 3 * h)
        x = cache["x"].reshape(-1, self.embed)
        d_embed = np.zeros_like(p["embed"])
        np.add.at(d_embed, inputs.reshape(-1), flat_gx @ p["w_x"].T)
        return {
            "embed": d_embed,
            "w_x": x.T @ flat_gx,
            "b_x": flat_gx.sum(axis=0),
            "w_h": prev.reshape(-1, h).T @ flat_gh,
            "b_h": flat_gh.sum(axis=0),
        }

    def _loss_and_grads(
        self, inputs: NDArray[np.int64], targets: NDArray[np.int64], keep: Array, h0: Array
    ) -> tuple[float, dict[str, Array], Array]:
        """Mean cross-entropy per call over a window (targets of -1 carry no loss), its gradients, and
        the last hidden state."""
        p = self.params
        states, cache = self._forward(inputs, keep, h0)
        steps, batch = inputs.shape
        flat = states.reshape(-1, self.hidden)
        logits = flat @ p["w_out"] + p["b_out"]
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=1, keepdims=True)
        rows = np.flatnonzero(targets.reshape(-1) >= 0)  # targets of -1 (trace ends) carry no loss
        tgt = targets.reshape(-1)[rows]
        count = max(len(rows), 1)
        loss = float(-np.log(prob[rows, tgt]).sum() / count)
        d_logits = prob
        d_logits[rows, tgt] -= 1.0
        d_logits[targets.reshape(-1) < 0] = 0.0
        d_logits /= count
        grads = self._backward((d_logits @ p["w_out"].T).reshape(steps, batch, self.hidden), cache, inputs)
        grads["w_out"] = flat.T @ d_logits
        grads["b_out"] = d_logits.sum(axis=0)
        return loss, grads, states[-1]

    # -- training ---------------------------------------------------------------------------------

    def fit(self, traces: list[Trace]) -> GruCallModel:
        """Learn the next-call distribution of the normal traces (truncated BPTT, Adam, clipping)."""
        traces = [t for t in traces if len(t)]
        if not traces:
            raise ValueError("need at least one non-empty normal trace")
        self.vocab = np.unique(np.concatenate(traces))
        size = len(self.vocab) + 2
        self._init_params(size)
        rng = np.random.default_rng(self.seed + 1)
        adam_m = {k: np.zeros_like(v) for k, v in self.params.items()}
        adam_v = {k: np.zeros_like(v) for k, v in self.params.items()}
        step = 0
        self.history = []
        for epoch in range(self.epochs):
            order = rng.permutation(len(traces))
            # one long stream: start token, then the trace's calls; the target of each input is the next call
            tokens = np.concatenate([np.r_[_START, self._tokens(traces[i])] for i in order])
            inputs_all, targets_all = tokens[:-1], tokens[1:]
            valid_all = targets_all != _START  # the start token is never predicted
            streams = max(1, min(self.streams, len(inputs_all) // 2))  # a few short traces: fewer streams
            per_stream = len(inputs_all) // streams
            shape = (streams, per_stream)
            inputs_s = inputs_all[: streams * per_stream].reshape(shape).T
            targets_s = targets_all[: streams * per_stream].reshape(shape).T
            valid_s = valid_all[: streams * per_stream].reshape(shape).T
            state = np.zeros((streams, self.hidden), dtype=self.dtype)
            rate = self.learning_rate * (0.5 ** max(0.0, (epoch - self.epochs / 2) / (self.epochs / 6)))
            losses = []
            for begin in range(0, per_stream, self.window):
                inputs = inputs_s[begin : begin + self.window]
                targets = targets_s[begin : begin + self.window]
                keep = (inputs != _START).astype(self.dtype)
                # windows straddling a trace end: positions whose target is a start token carry no loss
                tgt = np.where(valid_s[begin : begin + self.window], targets, -1)
                loss, grads, state = self._loss_and_grads(inputs, tgt, keep, state)
                losses.append(loss)
                norm = float(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values())))
                scale = min(1.0, self.clip / max(norm, 1e-12))
                step += 1
                for k, g in grads.items():
                    g = g * scale
                    adam_m[k] = 0.9 * adam_m[k] + 0.1 * g
                    adam_v[k] = 0.999 * adam_v[k] + 0.001 * g * g
                    m_hat = adam_m[k] / (1.0 - 0.9**step)
                    v_hat = adam_v[k] / (1.0 - 0.999**step)
                    self.params[k] -= (rate * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(self.dtype)
            self.history.append(float(np.mean(losses)))
        return self

    # -- scoring ----------------------------------------------------------------------------------

    def surprises(self, traces: list[Trace], batch: int = 256, chunk: int = 256) -> list[NDArray[np.float64]]:
        """Negative log-probability of each call of each trace given the calls before it in that trace."""
        if not self.params:
            raise RuntimeError("model is not fitted")
        p = self.params
        h = self.hidden
        out: list[NDArray[np.float64]] = [np.zeros(0) for _ in traces]
        order = np.argsort([len(t) for t in traces], kind="stable")
        floor = _FLOOR / _BASE
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            tokens = [self._tokens(traces[i]) for i in rows]
            longest = max((len(t) for t in tokens), default=0)
            if longest == 0:
                continue
            targets = np.full((longest, len(rows)), _UNKNOWN, dtype=np.int64)
            for j, tok in enumerate(tokens):
                targets[: len(tok), j] = tok
            inputs = np.vstack([np.full((1, len(rows)), _START, dtype=np.int64), targets[:-1]])
            gx_all = p["embed"] @ p["w_x"] + p["b_x"]  # the input projection of every token
            state = np.zeros((len(rows), h), dtype=self.dtype)
            nll = np.empty((longest, len(rows)))
            for c0 in range(0, longest, chunk):
                c1 = min(c0 + chunk, longest)
                states = np.empty((c1 - c0, len(rows), h), dtype=self.dtype)
                for t in range(c0, c1):
                    gx = gx_all[inputs[t]]
                    gh = state @ p["w_h"] + p["b_h"]
                    z = _sigmoid(gx[:, :h] + gh[:, :h])
                    r = _sigmoid(gx[:, h : 2 * h] + gh[:, h : 2 * h])
                    n = np.tanh(gx[:, 2 * h :] + r * gh[:, 2 * h :])
                    state = n + z * (state - n)
                    states[t - c0] = state
                logits = states.reshape(-1, h) @ p["w_out"] + p["b_out"]
                logits -= logits.max(axis=1, keepdims=True)
                prob = np.exp(logits.astype(np.float64))
                prob /= prob.sum(axis=1, keepdims=True)
                picked = prob[np.arange(len(prob)), targets[c0:c1].reshape(-1)]
                picked = np.where(targets[c0:c1].reshape(-1) == _UNKNOWN, 0.0, picked)
                nll[c0:c1] = -np.log((1.0 - _FLOOR) * picked + floor).reshape(c1 - c0, len(rows))
            for j, i in enumerate(rows):
                out[i] = nll[: len(tokens[j]), j].copy()
        return out

    def score(self, traces: list[Trace]) -> NDArray[np.float64]:
        """Mean surprise per call of each trace: higher means further from normal behaviour."""
        return np.array([float(s.mean()) if len(s) else 0.0 for s in self.surprises(traces)])

    # -- persistence ------------------------------------------------------------------------------

    def arrays(self, prefix: str = "") -> dict[str, NDArray[np.generic]]:
        """The model as named arrays (what :meth:`save` writes), keys prefixed with ``prefix``."""
        settings = np.array([self.embed, self.hidden, self.epochs, self.streams, self.window, self.seed])
        arrays: dict[str, NDArray[np.generic]] = {
            f"{prefix}settings": settings,
            f"{prefix}rates": np.array([self.learning_rate, self.clip]),
            f"{prefix}vocab": self.vocab,
        }
        return arrays | {f"{prefix}{k}": v for k, v in self.params.items()}

    @classmethod
    def from_arrays(cls, data: Mapping[str, NDArray[np.generic]], prefix: str = "") -> GruCallModel:
        """Rebuild a model from what :meth:`arrays` gave."""
        embed, hidden, epochs, streams, window, seed = (int(v) for v in data[f"{prefix}settings"])
        rate, clip = (float(v) for v in data[f"{prefix}rates"])
        model = cls(embed, hidden, epochs, streams, window, rate, clip, seed)
        model.vocab = np.asarray(data[f"{prefix}vocab"], dtype=np.int64)
        model.params = {k: np.asarray(data[f"{prefix}{k}"], dtype=np.float32) for k in _PARAMS}
        return model

    def save(self, path: Path) -> None:
        """Write the model to one ``.npz`` file (written then renamed, so it is never half-written)."""
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **self.arrays())  # type: ignore[arg-type]
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> GruCallModel:
        """Read a model written by :meth:`save`."""
        with np.load(path) as data:
            return cls.from_arrays(data)
