"""The latent-code vocabulary of InfoGAN and the information loss of each code type.

InfoGAN (Chen et al. 2016, sec. 5) maximises a variational lower bound of the mutual information
between a code c and the generated image x = G(z, c):

    I(c; x) >= L_I = H(c) + E_{c ~ p(c), x ~ G(z, c)} [ log Q(c | x) ]

H(c) is a constant of the prior, so training minimises the negative log-likelihood
-log Q(c | x) of the code that made the image, weighted by lambda. This module holds:

* the code types (`Categorical`, `Uniform`, `Gaussian`), each a named, weighted prior;
* `CodeSpec`, an ordered set of them, parsed from one spec string such as
  ``"c1=cat:10,c2=unif:-1:1@0.1,c3=gauss@0.1"`` (``@`` sets lambda);
* sampling from the priors, the generator-input layout and Q's output layout;
* the losses (pure functions of Q's raw outputs and the true codes) and the lower bound.

Spec grammar, one entry per code, comma separated::

    NAME=cat:K[@LAMBDA]               K >= 2 values, uniform prior, one-hot into G
    NAME=unif[:LOW:HIGH][@LAMBDA]     Unif(LOW, HIGH), default Unif(-1, 1)
    NAME=gauss[@LAMBDA]               N(0, 1)

NAME is a Python identifier. LAMBDA defaults to 1 for every code; presets choose their own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import InfoganError

# How Q models a continuous code, selectable per run (`--cont-loss`).
CONT_LOSSES = ("nll", "nll-fixed", "mse")
# exp() of Q's log-std output is clamped to this range so a confident Q cannot drive the NLL
# to -inf through a vanishing std (and a lost one cannot explode it).
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class Categorical:
    """c ~ Cat(k, 1/k); fed to G one-hot; Q gives k logits; loss: cross-entropy."""

    name: str
    k: int
    lam: float = 1.0

    kind = "cat"

    @property
    def g_dim(self) -> int:
        return self.k

    def entropy(self) -> float:
        """H(c) = ln k nats."""
        return math.log(self.k)

    def sample(self, n: int, gen: torch.Generator | None = None, device="cpu") -> torch.Tensor:
        return torch.randint(0, self.k, (n,), generator=gen, device=device)

    def check_value(self, v) -> int:
        if isinstance(v, float) and not v.is_integer() or not 0 <= v < self.k:
            raise InfoganError(
                f"code {self.name}: value {v} is out of range; a cat:{self.k} code takes an "
                f"integer 0..{self.k - 1}"
            )
        return int(v)

    def __str__(self) -> str:
        return f"{self.name}=cat:{self.k}@{self.lam:g}"


@dataclass(frozen=True)
class Uniform:
    """c ~ Unif(low, high); fed to G as the scalar; Q gives a mean (and a log-std)."""

    name: str
    low: float = -1.0
    high: float = 1.0
    lam: float = 1.0

    kind = "unif"
    g_dim = 1

    def entropy(self) -> float:
        """H(c) = ln(high - low) nats (differential entropy)."""
        return math.log(self.high - self.low)

    def sample(self, n: int, gen: torch.Generator | None = None, device="cpu") -> torch.Tensor:
        u = torch.rand(n, generator=gen, device=device)
        return self.low + (self.high - self.low) * u

    def check_value(self, v) -> float:
        # Traversals deliberately leave the training range (the paper sweeps -2..2), so any
        # finite value is allowed; only non-numbers are rejected.
        if not math.isfinite(float(v)):
            raise InfoganError(f"code {self.name}: value {v} is not a finite number")
        return float(v)

    def __str__(self) -> str:
        return f"{self.name}=unif:{self.low:g}:{self.high:g}@{self.lam:g}"


@dataclass(frozen=True)
class Gaussian:
    """c ~ N(0, 1); fed to G as the scalar; Q gives a mean (and a log-std)."""

    name: str
    lam: float = 1.0

    kind = "gauss"
    g_dim = 1

    def entropy(self) -> float:
        """H(c) = 0.5 ln(2 pi e) nats (differential entropy of N(0, 1))."""
        return 0.5 * math.log(2 * math.pi * math.e)

    def sample(self, n: int, gen: torch.Generator | None = None, device="cpu") -> torch.Tensor:
        return torch.randn(n, generator=gen, device=device)

    check_value = Uniform.check_value

    def __str__(self) -> str:
        return f"{self.name}=gauss@{self.lam:g}"


Code = Categorical | Uniform | Gaussian

_ENTRY = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*([a-z]+)((?::[^:@]+)*)\s*(?:@\s*(\S+))?\s*$")
_HELP = "expected e.g. 'c1=cat:10,c2=unif:-1:1@0.1,c3=gauss@0.1'"


def _number(text: str, what: str, entry: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise InfoganError(f"code spec '{entry}': {what} '{text}' is not a number; {_HELP}") from None
    if not math.isfinite(x):
        raise InfoganError(f"code spec '{entry}': {what} must be finite; {_HELP}")
    return x


def _parse_entry(entry: str) -> Code:
    m = _ENTRY.match(entry)
    if not m:
        raise InfoganError(f"code spec '{entry}' is not NAME=TYPE[:ARGS][@LAMBDA]; {_HELP}")
    name, kind, args, lam_text = m.groups()
    args = [a for a in args.split(":") if a]
    lam = 1.0 if lam_text is None else _number(lam_text, "lambda", entry)
    if lam < 0:
        raise InfoganError(f"code spec '{entry}': lambda must be >= 0")
    if kind == "cat":
        if len(args) != 1 or not re.fullmatch(r"\d+", args[0]):
            raise InfoganError(f"code spec '{entry}': write cat:K with an integer K >= 2")
        k = int(args[0])
        if k < 2:
            raise InfoganError(f"code spec '{entry}': a categorical code needs K >= 2 values, got {k}")
        return Categorical(name, k, lam)
    if kind == "unif":
        if len(args) not in (0, 2):
            raise InfoganError(f"code spec '{entry}': write unif or unif:LOW:HIGH")
        low, high = (_number(a, "bound", entry) for a in args) if args else (-1.0, 1.0)
        if not low < high:
            raise InfoganError(
                f"code spec '{entry}': the range {low:g}..{high:g} is empty or reversed; "
                "write unif:LOW:HIGH with LOW < HIGH"
            )
        return Uniform(name, low, high, lam)
    if kind == "gauss":
        if args:
            raise InfoganError(f"code spec '{entry}': gauss takes no arguments (it is N(0, 1))")
        return Gaussian(name, lam)
    raise InfoganError(f"code spec '{entry}': unknown code type '{kind}'; use cat, unif or gauss")


@dataclass(frozen=True)
class CodeSpec:
    """An ordered set of named codes plus how Q models the continuous ones.

    Layouts (in order of `codes`):
      generator input  = [z (noise_dim) | cat one-hot (k) | cont scalar (1) | ...]
      Q output         = [cat logits (k) | cont mean (1) [, cont log-std (1)] | ...]
    """

    codes: tuple[Code, ...]
    cont_loss: str = "nll"

    def __post_init__(self):
        if self.cont_loss not in CONT_LOSSES:
            raise InfoganError(
                f"unknown continuous loss '{self.cont_loss}'; use one of {', '.join(CONT_LOSSES)}"
            )
        names = [c.name for c in self.codes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InfoganError(f"code spec: the name {dup[0]} is used twice; give each code its own name")

    @classmethod
    def parse(cls, text: str, cont_loss: str = "nll") -> CodeSpec:
        entries = [e for e in text.split(",") if e.strip()]
        if not entries:
            raise InfoganError(f"code spec '{text}' names no code; {_HELP}")
        return cls(tuple(_parse_entry(e) for e in entries), cont_loss)

    def __str__(self) -> str:
        return ",".join(str(c) for c in self.codes)

    def __iter__(self):
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, name: str) -> Code:
        for c in self.codes:
            if c.name == name:
                return c
        raise InfoganError(
            f"unknown code '{name}'; this model's codes are {', '.join(self.names) or 'none'}"
        )

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.codes]

    @property
    def categorical(self) -> list[Categorical]:
        return [c for c in self.codes if isinstance(c, Categorical)]

    @property
    def learned_std(self) -> bool:
        return self.cont_loss == "nll"

    def q_width(self, code: Code) -> int:
        if isinstance(code, Categorical):
            return code.k
        return 2 if self.learned_std else 1

    @property
    def g_dim(self) -> int:
        """Width of the codes' part of the generator input."""
        return sum(c.g_dim for c in self.codes)

    @property
    def q_dim(self) -> int:
        """Width of Q's output."""
        return sum(self.q_width(c) for c in self.codes)

    def entropy(self) -> dict[str, float]:
        return {c.name: c.entropy() for c in self.codes}

    # ---- sampling and layouts -------------------------------------------------------------

    def sample(
        self,
        n: int,
        gen: torch.Generator | None = None,
        device="cpu",
        fixed: dict[str, float | int | torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw n codes from the priors; `fixed` pins some codes to a value (or a (n,) tensor).

        Returns name -> (n,) tensor: int64 for categorical codes, float32 for continuous ones.
        Every code is drawn (even a fixed one) so the random stream, and so the other codes,
        do not depend on which codes are fixed.
        """
        fixed = dict(fixed or {})
        for name in fixed:
            self[name]  # unknown names raise here
        out = {}
        for c in self.codes:
            v = c.sample(n, gen, device)
            if c.name in fixed:
                f = fixed[c.name]
                if isinstance(f, torch.Tensor):
                    v = f.to(device=device, dtype=v.dtype).expand(n).clone()
                else:
                    v = torch.full_like(v, c.check_value(f))
            out[c.name] = v
        return out

    def to_g_input(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """(n, g_dim) float tensor: one-hot categorical codes, continuous codes as scalars."""
        parts = []
        for c in self.codes:
            v = codes[c.name]
            if isinstance(c, Categorical):
                parts.append(F.one_hot(v, c.k).float())
            else:
                parts.append(v.float().unsqueeze(1))
        return torch.cat(parts, dim=1)

    def split_q(self, q_out: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        """Cut Q's (n, q_dim) output into per-code parts.

        categorical: {"logits": (n, k)}; continuous: {"mean": (n,), "log_std": (n,)} where
        log_std is clamped to [LOG_STD_MIN, LOG_STD_MAX] when learned and 0 (std 1) otherwise.
        """
        if q_out.shape[-1] != self.q_dim:
            raise InfoganError(
                f"Q output has width {q_out.shape[-1]} but the code spec needs {self.q_dim}"
            )
        out, i = {}, 0
        q_out = q_out.float()
        for c in self.codes:
            w = self.q_width(c)
            part = q_out[:, i : i + w]
            i += w
            if isinstance(c, Categorical):
                out[c.name] = {"logits": part}
            else:
                mean = part[:, 0]
                if self.learned_std:
                    log_std = part[:, 1].clamp(LOG_STD_MIN, LOG_STD_MAX)
                else:
                    log_std = torch.zeros_like(mean)
                out[c.name] = {"mean": mean, "log_std": log_std}
        return out

    # ---- information loss ----------------------------------------------------------------

    def info_losses(
        self, q_out: torch.Tensor, codes: dict[str, torch.Tensor], kinds: tuple[str, ...] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Weighted information loss and, per code, its loss and lower bound (nats).

        Returns (sum_i lambda_i * loss_i, {name: loss_i}, {name: bound_i}) where loss_i is what
        training minimises for code i (cross-entropy, Gaussian NLL or MSE) and
        bound_i = H(c_i) - NLL_i is the mutual-information lower bound on this batch. For MSE
        runs the bound uses a unit-variance Gaussian Q, which is still a valid bound.
        `kinds` (e.g. ("cat",)) limits all three to the codes of those kinds.
        """
        parts = self.split_q(q_out)
        total = q_out.new_zeros((), dtype=torch.float32)
        losses, bounds = {}, {}
        for c in self.codes:
            if kinds is not None and c.kind not in kinds:
                continue
            p, target = parts[c.name], codes[c.name]
            if isinstance(c, Categorical):
                loss = categorical_nll(p["logits"], target)
                nll = loss
            else:
                nll = gaussian_nll(p["mean"], p["log_std"], target)
                loss = mse(p["mean"], target) if self.cont_loss == "mse" else nll
            losses[c.name] = loss
            bounds[c.name] = c.entropy() - nll.detach()
            total = total + c.lam * loss
        return total, losses, bounds


# ---- losses: pure functions of Q's raw outputs and the true codes --------------------------


def categorical_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits, mean over the batch:  -1/n sum_j log softmax(logits_j)[c_j].

    Uniform logits give exactly ln k. Softmax is never applied before this (PyTorch-GAN #84).
    """
    return F.cross_entropy(logits.float(), target)


def gaussian_nll(mean: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log N(c; mu, sigma^2), mean over the batch:

        0.5 ln(2 pi) + ln sigma + (c - mu)^2 / (2 sigma^2)

    With mu = c and sigma = 1 this is 0.5 ln(2 pi).
    """
    z = (target.float() - mean.float()) * torch.exp(-log_std.float())
    return (_HALF_LOG_2PI + log_std.float() + 0.5 * z * z).mean()


def mse(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error (c - mu)^2: the fixed-variance simplification, up to constants."""
    return F.mse_loss(mean.float(), target.float())
