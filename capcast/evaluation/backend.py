"""``capcast-hf``: lm-eval's HF backend with a shared-context scorer for log-likelihood requests.

The second module (beside :mod:`capcast.evaluation.harness`) that imports ``lm_eval``: it
registers the model class with lm-eval's model registry, so tasks, prompts, few-shot examples and
metrics stay lm-eval's own and only the forward passes change.

lm-eval's :class:`~lm_eval.models.huggingface.HFLM` runs one padded forward pass per
(context, continuation) pair, so a four-choice item encodes its context four times. Here the
requests that share a context are grouped, the context is encoded once (contexts of equal length
batched together, so no padding enters the cached keys and values), and every continuation is
scored from that cache. The numbers are lm-eval's:

- the token ids are the ones lm-eval's ``_encode_pair`` produced (this overrides
  ``_loglikelihood_tokens``, which receives them), and lm-eval's left truncation
  ``(context + continuation)[-(max_length + 1):][:-1]`` is applied per request before grouping, so
  a truncated pair shares a cache only with pairs truncated to the same prefix;
- the cached prefix is the model input up to (not including) the last context token; the
  suffix ``[last context token] + continuation[:-1]`` yields exactly the logits lm-eval scores;
- log-softmax dtype, autocast and is_greedy (argmax equal to every continuation token) are
  computed as HFLM does; results come back in request order and go to lm-eval's cache hook.

The log-likelihoods agree with HFLM's to float rounding (tests: within 1e-4; measured ~1e-6).
Where the cache cannot be reused exactly (seq2seq models, models that take no key/value cache,
sliding-window attention shorter than the inputs, PEFT prompt tuning, lm-eval's rolling
log-likelihood windows) it falls back to HFLM's own path.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections import defaultdict
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from capcast.evaluation.harness.checks import ContinuationTooLong

NAME = "capcast-hf"


@register_model(NAME)
class SharedContextHFLM(HFLM):
    """HFLM whose log-likelihoods encode each shared context once (see the module docstring)."""

    # Counters of the last _loglikelihood_tokens call: requests, forward rows, and which path ran.
    last_stats: dict[str, Any] = {}

    def shares_contexts(self) -> bool:
        """Whether the cached path is exact for this model (else HFLM's path runs)."""
        if self.backend != "causal" or hasattr(self.model, "peft_config"):
            return False
        if self._cache_argument is None:
            return False
        window = getattr(self.config, "sliding_window", None)
        return not (isinstance(window, int) and window < self.max_length + 1)

    @functools.cached_property
    def _cache_argument(self) -> str | None:
        """The forward argument that takes a key/value cache: ``cache`` (transformers 5) or
        ``past_key_values`` (4.x); None when the model takes neither (then HFLM's path runs)."""
        try:
            parameters = inspect.signature(self.model.forward).parameters
        except (TypeError, ValueError):
            return None
        return next((name for name in ("cache", "past_key_values") if name in parameters), None)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        # override_bs: lm-eval's rolling windows (perplexity), scored by HFLM as it batches them.
        if override_bs is not None or not requests or not self.shares_contexts():
            self.last_stats = {"path": "hf", "requests": len(requests)}
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        return self._shared_context_tokens(requests)

    # ------------------------------------------------------------------------------------------

    def _rows_per_forward(self, requests) -> int:
        if self.batch_size != "auto":
            return max(1, int(self.batch_size))
        # Size the batch by the longest request, as HFLM does: no row here is longer than it.
        longest = max(requests, key=lambda req: len(req[1]) + len(req[2]))
        return max(1, int(self._detect_batch_size([longest], 0)))

    def _shared_context_tokens(self, requests) -> list[tuple[float, bool]]:
        # prefix (model input before the last context token) -> suffix -> indices of the requests
        groups: dict[tuple[int, ...], dict[tuple[int, ...], list[int]]] = defaultdict(lambda: defaultdict(list))
        for i, (_, context_enc, continuation_enc) in enumerate(requests):
            if len(continuation_enc) > self.max_length:  # lm-eval's HFLM asserts here; say it in one line
                raise ContinuationTooLong(len(continuation_enc), self.max_length)
            assert len(context_enc) > 0 and len(continuation_enc) > 0
            inp = (context_enc + continuation_enc)[-(self.max_length + 1):][:-1]  # lm-eval's truncation
            split = len(inp) - len(continuation_enc)
            groups[tuple(inp[:split])][tuple(inp[split:])].append(i)

        rows_per_forward = self._rows_per_forward(requests)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        forwards = rows = 0
        # Longest prefixes first (any memory error shows at once); equal lengths share a forward.
        by_length: dict[int, list[tuple[int, ...]]] = defaultdict(list)
        for prefix in groups:
            by_length[len(prefix)].append(prefix)
        for length in sorted(by_length, reverse=True):
            chunk: list[tuple[int, ...]] = []
            chunk_rows = 0
            for prefix in sorted(by_length[length]):
                n = len(groups[prefix])
                if chunk and (chunk_rows + n > rows_per_forward or len(chunk) >= rows_per_forward):
                    forwards += self._score_chunk(chunk, groups, requests, results, rows_per_forward)
                    rows += chunk_rows
                    chunk, chunk_rows = [], 0
                chunk.append(prefix)
                chunk_rows += n
            if chunk:
                forwards += self._score_chunk(chunk, groups, requests, results, rows_per_forward)
                rows += chunk_rows
        self.last_stats = {"path": "shared-context", "requests": len(requests), "contexts": len(groups), "rows": rows,
                           "forwards": forwards}
        return results  # type: ignore[return-value]

    def _forward(self, input_ids: torch.Tensor, cache=None):
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            out = self.model(input_ids=input_ids, use_cache=True, **({self._cache_argument: cache} if cache is not None else {}))
        return out.logits, (out.get("cache") if out.get("cache") is not None else out.get("past_key_values"))

    def _score_chunk(self, prefixes, groups, requests, results, rows_per_forward: int) -> int:
        """Encode ``prefixes`` (all one length) in one forward, then score their suffixes; returns
        the number of forward passes run."""
        forwards = 0
        cache = None
        if prefixes[0]:
            _, cache = self._forward(torch.tensor(prefixes, dtype=torch.long, device=self.device))
            forwards += 1
        rows = [(p, suffix) for p, prefix in enumerate(prefixes) for suffix in groups[prefix]]
        for start in range(0, len(rows), rows_per_forward):
            batch = rows[start:start + rows_per_forward]
            width = max(len(suffix) for _, suffix in batch)
            # Right padding: with causal attention it changes no logit of the real positions (as in HFLM).
            ids = torch.tensor([list(s) + [0] * (width - len(s)) for _, s in batch], dtype=torch.long, device=self.device)
            rows_cache = None
            if cache is not None:
                rows_cache = cache if start + rows_per_forward >= len(rows) else copy.deepcopy(cache)
                rows_cache.batch_select_indices(torch.tensor([p for p, _ in batch], device=self.device))
            logits, _ = self._forward(ids, rows_cache)
            forwards += 1
            if logits.shape[1] != width:  # virtual tokens or the like: not the layout scored here
                raise RuntimeError(f"{NAME}: the model returned {logits.shape[1]} positions for {width} inputs; use --backend hf")
            logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)
            for (p, suffix), row in zip(batch, logprobs):
                row = row[: len(suffix)]
                greedy = row.argmax(dim=-1)
                for i in groups[prefixes[p]][suffix]:
                    request_str, _, continuation_enc = requests[i]
                    # A continuation is at most the suffix long; with truncation its tokens are the suffix's last ones.
                    cont = torch.tensor(continuation_enc, dtype=torch.long, device=self.device)
                    scored = row[-len(cont):]
                    answer = (float(torch.gather(scored, 1, cont.unsqueeze(-1)).sum()), bool((greedy[-len(cont):] == cont).all()))
                    results[i] = answer
                    if request_str is not None:
                        self.cache_hook.add_partial("loglikelihood", request_str, answer)
        return forwards
