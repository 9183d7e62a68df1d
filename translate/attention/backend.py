"""Choosing the attention backend, in one function, and the two dispatchers every module calls.

Legend: B batch, H heads, T queries, S keys, D head dim, A additive hidden dim, Dk value dim.
Backends: "math" (functional.py: the reference; under autograd its one-bias form, scaled_dot_product_biased,
unless weights are asked for or a query row sees no key), "sdpa" (F.scaled_dot_product_attention),
"triton" (our fused kernels, triton_flash.py / triton_additive.py), "auto". A fast path that cannot serve a
call falls back and says why, once, in the log. Triton is imported only when it is chosen, so the CPU default
path never imports it.

The one rule for "auto": a module still set to "auto" resolves per call (resolve_backend: triton on CUDA
when triton imports, sdpa otherwise). On a CPU the better of math and sdpa depends on the machine, so
training measures its own step once per machine (translate/training/backend_choice.py), pins the winner
with set_backend and records the verdict in the checkpoint; loading that checkpoint for inference pins it
again where the verdict holds (apply_verdict: the same machine, measured in fp32, the precision inference
runs in), and leaves "auto" per call everywhere else.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from translate.attention import cpu_decode
from translate.attention.functional import (
    additive_math,
    attention_bias,
    scaled_dot_product_biased,
    scaled_dot_product_math,
)
from translate.attention.masks import (
    attention_mask,
    check_key_padding_mask,
    check_window,
    lengths_from_padding_mask,
)
from translate.machine import ISA_LIMITS, cpu_name

BACKENDS = ("math", "sdpa", "triton", "auto")
TRITON_HEAD_DIMS = (16, 128)  # the fused dot-product kernel's head-dim range, inclusive
TRITON_ADDITIVE_MAX_VALUE_DIM = 1024  # the fused additive kernel keeps a (T, Dk) context tile
TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

logger = logging.getLogger(__name__)
_announced: set[tuple[str, str, str]] = set()


@functools.cache
def triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _announce(requested: str, resolved: str, reason: str) -> str:
    """Log each (requested, resolved, reason) once: visible in logs without flooding them per step."""
    key = (requested, resolved, reason)
    if key not in _announced:
        _announced.add(key)
        logger.info("attention backend: requested %s -> %s (%s)", requested, resolved, reason)
    return resolved


def resolve_backend(
    name: str,
    device: torch.device | str,
    *,
    need_weights: bool = False,
    dropout_p: float = 0.0,
    form: str = "dot",
    right_padded: bool = True,
    head_dim: int | None = None,
    value_dim: int | None = None,
    dtype: torch.dtype | None = None,
) -> str:
    """Map a requested backend to the concrete one ("math", "sdpa" or "triton") that can serve this call.

    form is "dot" (scaled dot-product) or "additive". The other keywords describe the call, so that a
    fast path is only chosen when it supports it: weights requested, dropout, a key padding mask that is
    not right-padded (the kernels take lengths), head dims or dtypes outside the kernel's range.
    """
    if name not in BACKENDS:
        raise ValueError(f"attention backend must be one of {'|'.join(BACKENDS)}, got {name!r}")
    if form not in ("dot", "additive"):
        raise ValueError(f"attention form must be 'dot' or 'additive', got {form!r}")
    device = torch.device(device)
    if name == "auto":
        if device.type == "cuda" and triton_importable():
            chosen, reason = "triton", "cuda"
        elif device.type == "cuda":
            chosen, reason = "sdpa", "cuda, triton not importable"
        else:
            chosen, reason = "sdpa", device.type
    else:
        chosen, reason = name, "requested"
    # Without a fused kernel a dot call goes to sdpa, an additive call to math (sdpa has no additive form).
    fallback = "sdpa" if form == "dot" else "math"
    if need_weights and chosen != "math":
        chosen, reason = "math", "need_weights: only math materializes the weights"
    elif form == "additive" and chosen == "sdpa":
        chosen, reason = "math", "sdpa has no additive form"
    elif chosen == "triton":
        problem = _triton_problem(device, form, dropout_p, right_padded, head_dim, value_dim, dtype)
        if problem is not None:
            chosen, reason = fallback, f"triton cannot: {problem}"
    return _announce(name, chosen, reason)


def set_backend(model: torch.nn.Module, name: str) -> int:
    """Point every attention module inside `model` at backend `name` -> how many modules it changed.

    The attention modules keep their backend as a plain `backend` string; training uses this to apply the
    backend it measured fastest on this machine (translate/training/backend_choice.py).
    """
    if name not in BACKENDS:
        raise ValueError(f"attention backend must be one of {'|'.join(BACKENDS)}, got {name!r}")
    changed = 0
    for module in model.modules():
        if isinstance(getattr(module, "backend", None), str) and module.backend in BACKENDS:
            module.backend, changed = name, changed + 1
    return changed


def machine_id() -> str:
    """What a measured CPU verdict depends on besides the model: the CPU, the ISA PyTorch runs (and any limit
    set by hand), the torch build."""
    isa = torch.backends.cpu.get_cpu_capability()
    limits = ",".join(f"{k}={os.environ[k]}" for k in ISA_LIMITS if k in os.environ)
    return f"{cpu_name()} | ATen {isa} {limits} | torch {torch.__version__}"


def apply_verdict(model: torch.nn.Module, verdict: Mapping | None, device: torch.device | str) -> str:
    """Pin the backend training measured on this machine (`verdict`: {backend, machine, precision}, from a
    checkpoint) onto the model's "auto" attention modules, for fp32 inference on the same CPU -> the reason,
    for the log ("auto per call" and why not, when the verdict does not hold)."""
    if torch.device(device).type != "cpu":
        return f"auto per call ({torch.device(device).type})"
    if not verdict:
        return "auto per call (no measured verdict in the checkpoint)"
    if verdict.get("machine") != machine_id():
        return "auto per call (the verdict was measured on another machine or torch build)"
    if verdict.get("precision") != "fp32":
        return f"auto per call (the verdict was measured in {verdict.get('precision')}; inference runs fp32)"
    backend = verdict.get("backend")
    if backend not in ("math", "sdpa"):
        return f"auto per call (unknown measured backend {backend!r})"
    autos = [m for m in model.modules() if getattr(m, "backend", None) == "auto"]
    for module in autos:
        module.backend = backend
    return f"{backend}, measured by training on this machine in fp32 ({len(autos)} modules)"


def _triton_problem(device, form, dropout_p, right_padded, head_dim, value_dim, dtype) -> str | None:
    """The first thing the fused kernels cannot do for this call, or None."""
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        return f"{device.type} tensors need CUDA or TRITON_INTERPRET=1"
    if not triton_importable():
        return "triton is not importable"
    if dtype is not None and dtype not in TRITON_DTYPES:
        return f"dtype {dtype} (supports float32, float16, bfloat16)"
    if not right_padded:
        return "key_padding_mask is not right-padded (the kernel takes key lengths)"
    if form == "dot":
        if dropout_p > 0.0:
            return "dropout on the weights"
        low, high = TRITON_HEAD_DIMS
        if head_dim is not None and not low <= head_dim <= high:
            return f"head dim {head_dim} outside {low}..{high}"
        if value_dim is not None and value_dim != head_dim:
            return "value dim differs from head dim"
    elif value_dim is not None and value_dim > TRITON_ADDITIVE_MAX_VALUE_DIM:
        return f"value dim {value_dim} above {TRITON_ADDITIVE_MAX_VALUE_DIM}"
    return None


def resolve_with_lengths(
    backend: str, device: torch.device, key_padding_mask: Tensor | None, **facts
) -> tuple[str, Tensor | None]:
    """resolve_backend, and for triton the key lengths (B,) its kernels take instead of a mask: a mask that is
    not right padding resolves again with right_padded=False (so triton is refused or falls back)."""
    resolved = resolve_backend(backend, device, **facts)
    if resolved != "triton" or key_padding_mask is None:
        return resolved, None
    lengths = lengths_from_padding_mask(key_padding_mask)
    if lengths is None:
        return resolve_backend(backend, device, right_padded=False, **facts), None
    return resolved, lengths


def scaled_dot_product(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    key_padding_mask: Tensor | None = None,
    causal: bool = False,
    window: int | None = None,
    dropout_p: float = 0.0,
    scale: float | None = None,
    backend: str = "auto",
    need_weights: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Attention of q (B,H,T,D) over k (B,H,S,D), v (B,H,S,Dv) -> (out (B,H,T,Dv), weights (B,H,T,S) | None).

    key_padding_mask (B,S) True = ignore; causal aligned bottom-right; window w: keys within +-w of the
    query's position. dropout_p is applied as given (pass 0.0 in eval). Weights only with need_weights=True.
    """
    batch, _, queries, head_dim = q.shape
    keys = k.shape[-2]
    check_key_padding_mask(key_padding_mask, batch, keys)
    check_window(window)
    if causal and queries == 1:
        causal = False  # bottom-right: the single (newest) query sees every key
    facts = dict(need_weights=need_weights, dropout_p=dropout_p, dtype=q.dtype)
    facts.update(head_dim=head_dim, value_dim=v.shape[-1])
    resolved, lengths = resolve_with_lengths(backend, q.device, key_padding_mask, **facts)
    if resolved == "math":
        if _under_autograd(q, k, v) and not need_weights:  # training: the same maths in fewer passes
            allowed = attention_mask(queries, keys, key_padding_mask, causal, window, device=q.device)
            if allowed is None or bool(allowed.any(dim=-1).all()):  # every query sees a key
                bias = attention_bias(allowed, q.dtype)  # (B|1,1,T|1,S), built once for all heads
                return scaled_dot_product_biased(q, k, v, bias, dropout_p, scale), None
        out, weights = scaled_dot_product_math(q, k, v, key_padding_mask, causal, window, dropout_p, scale)
        return out, (weights if need_weights else None)
    if resolved == "sdpa":
        if cpu_decode.applies(q, k, v, key_padding_mask, causal, window, dropout_p):  # decoding on a CPU
            return cpu_decode.attend(q, k, v, key_padding_mask, scale), None
        return _sdpa(q, k, v, key_padding_mask, causal, window, dropout_p, scale), None
    from translate.attention.triton_flash import flash_attention

    scale = 1.0 / math.sqrt(head_dim) if scale is None else scale
    return flash_attention(q, k, v, lengths, causal, window, scale), None


def _under_autograd(*tensors: Tensor) -> bool:
    """Training: autograd records this call. Inference (no_grad, decoding) keeps the reference."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _sdpa(q, k, v, key_padding_mask, causal, window, dropout_p, scale) -> Tensor:
    """PyTorch SDPA with a boolean mask; rows with every key masked are zeroed instead of NaN."""
    queries, keys = q.shape[-2], k.shape[-2]
    if key_padding_mask is None and window is None and (not causal or queries == keys):
        # is_causal is top-left aligned, which equals bottom-right when T == S: the fast mask-free kernels.
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=causal, scale=scale)
    allowed = attention_mask(queries, keys, key_padding_mask, causal, window, device=q.device)  # (B|1,1,T,S)
    empty = ~allowed.any(dim=-1, keepdim=True)  # (B|1,1,T,1) rows that may see no key
    # Let empty rows attend everywhere (finite values and gradients), then zero them.
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed | empty, dropout_p=dropout_p, scale=scale)
    return out.masked_fill(empty, 0.0)


def additive_attention(
    wq: Tensor,
    uk: Tensor,
    v_weight: Tensor,
    values: Tensor,
    *,
    key_padding_mask: Tensor | None = None,
    backend: str = "auto",
    need_weights: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """softmax_s(v^T tanh(wq_t + uk_s)) applied to values -> (context (B,T,Dk), weights (B,T,S) | None).

    wq (B,T,A) = W q, uk (B,S,A) = U h, v_weight (A,), values (B,S,Dk). "triton" runs the fused kernel,
    which never materializes the (B,T,S,A) tensor; every other backend runs math.
    """
    batch, _, _ = wq.shape
    keys = uk.shape[1]
    check_key_padding_mask(key_padding_mask, batch, keys)
    facts = dict(form="additive", need_weights=need_weights, dtype=wq.dtype, value_dim=values.shape[-1])
    resolved, lengths = resolve_with_lengths(backend, wq.device, key_padding_mask, **facts)
    if resolved == "triton":
        from translate.attention.triton_additive import additive_attention as fused_additive

        return fused_additive(wq, uk, v_weight, values, lengths), None
    context, weights = additive_math(wq, uk, v_weight, values, key_padding_mask)
    return context, (weights if need_weights else None)
