"""Built-in workload generators with defaults from published H100 figures.

``GENERATORS[name](**params) -> Workload``. Every parameter has a default; unknown
names and bad values raise one WorkloadError listing every bad parameter, as data in
``err.problems`` (``(parameter, problem)`` pairs) and one line each in its message. Byte counts are
those of the real job; scale them with ``Workload.scaled(rate_scale)``.

Sources of the defaults (also listed in README.md):

[H100]   NVIDIA H100 Tensor Core GPU datasheet: SXM5 BF16 dense tensor peak 989.4
         TFLOP/s (1,979 with sparsity), HBM3 3.35 TB/s.
[LLAMA3] Meta, "Introducing Meta Llama 3" (2024-04-18): "over 400 TFLOPS per GPU when
         trained on 16K GPUs simultaneously"; Dubey et al., "The Llama 3 Herd of
         Models", arXiv:2407.21783, Table 4: 38-43 % BF16 MFU on H100. Used as the
         achieved training rate ``ACHIEVED_TRAIN_FLOPS`` = 400e12 FLOP/s per GPU.
[GPT3]   Brown et al., "Language Models are Few-Shot Learners", arXiv:2005.14165,
         Table 2.1: GPT-3 XL 1.3 B parameters, batch 1M tokens; GPT-3 175B
         d_model 12,288, 96 layers, context 2,048.
[NEMO]   NVIDIA NeMo Framework 24.12 performance summary (docs.nvidia.com/nemo-framework/
         user-guide/24.12/nemotoolkit/performance/performance_summary.html):
         GPT3-175B pre-training on 512 H100, GBS 2048, MBS 2, seq 2048, TP 4, PP 8:
         825 tokens/s/GPU, i.e. 2048*2048/(825*512) = 9.93 s per step.
[DDP]    PyTorch DistributedDataParallel: bucket_cap_mb=25 (25 MiB buckets) and
         torch.distributed._DEFAULT_FIRST_BUCKET_BYTES = 1 MiB for the first bucket;
         Li et al., "PyTorch Distributed", VLDB 2020 (buckets all-reduced in
         backward order, overlapping the backward pass).
[MIXTRAL] Jiang et al., "Mixtral of Experts", arXiv:2401.04088: 32 layers, dim 4096,
         FFN 14,336, 8 KV heads of 128, 8 experts, top-2 routing, 12.9 B active params.
[NIM]    NVIDIA NIM LLM benchmarking 1.0.0, Llama-3.3-70B-Instruct on 2 x H100 80GB,
         FP8, TP2, concurrency 1, 5000 input / 500 output tokens: inter-token latency
         18.58 ms. Llama 3.3 70B: 80 layers, hidden 8,192 (Meta model card).
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable

from testbed.workload.errors import WorkloadError
from testbed.workload.model import Collective, Compute, Op, Recv, Send, Workload
from testbed.workload.schedules import SCHEDULES

MIB = 1024 * 1024
ACHIEVED_TRAIN_FLOPS = 400e12  # [LLAMA3], FLOP/s per H100 in large-scale BF16 training
DDP_FIRST_BUCKET_BYTES = 1 * MIB  # [DDP]
DDP_BUCKET_CAP_BYTES = 25 * MIB  # [DDP]
GPT3_175B_STEP_S = 2048 * 2048 / (825 * 512)  # [NEMO] 9.93 s per global step
GPT3_175B_MICRO_BATCHES = 2048 // (2 * (512 // (4 * 8)))  # GBS / (MBS * DP) = 64 per pipeline
GPT3_175B_STAGES = 8  # [NEMO] PP = 8
LLAMA33_70B_TP2_TOKEN_S = 18.58e-3  # [NIM] inter-token latency, TP2


def _generator(fn: Callable[..., Workload]) -> Callable[..., Workload]:
    """Report unknown parameter names together with the bad values of the known ones."""
    known = list(inspect.signature(fn).parameters)

    @functools.wraps(fn)
    def wrapper(**params: Any) -> Workload:
        unknown = [(name, f"unknown parameter; known: {', '.join(known)}") for name in params if name not in known]
        try:
            workload = fn(**{k: v for k, v in params.items() if k in known})
        except WorkloadError as err:
            if not unknown or err.source != fn.__name__:
                raise
            raise WorkloadError(source=fn.__name__, problems=(*unknown, *err.problems)) from None
        if unknown:
            raise WorkloadError(source=fn.__name__, problems=unknown)
        return workload

    return wrapper


class _Params:
    """Checks one generator's parameters, collecting every problem before raising.

    A failed check returns None; call :meth:`done` before using the values.
    """

    def __init__(self, generator: str) -> None:
        self.generator = generator
        self.problems: list[tuple[str, str]] = []

    def int(self, name: str, value: Any, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problems.append((name, f"must be an integer >= {minimum}, got {value!r}"))
            return None
        return value

    def float(self, name: str, value: Any, allow_zero: bool = False, below: float | None = None) -> float | None:
        ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
              and (value > 0 or (allow_zero and value == 0)))
        if not ok:
            self.problems.append((name, f"must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}"))
            return None
        if below is not None and not value < below:
            self.problems.append((name, f"must be < {below:g}, got {value!r}"))
            return None
        return float(value)

    def choice(self, name: str, value: Any, choices: tuple[str, ...], what: str) -> str | None:
        if not isinstance(value, str) or value not in choices:
            self.problems.append((name, f"must be {what}: {', '.join(map(repr, choices))}; got {value!r}"))
            return None
        return value

    def algorithm(self, name: str, kind: str, value: Any) -> str | None:
        known = tuple(algorithm for k, algorithm in SCHEDULES if k == kind)
        return self.choice(name, value, known, f"an algorithm for {kind}")

    def done(self) -> None:
        """Raise every problem found so far as one WorkloadError."""
        if self.problems:
            raise WorkloadError(source=self.generator, problems=self.problems)


#: Buckets per iteration at most (a real model has tens to hundreds).
MAX_DDP_BUCKETS = 10_000


def ddp_buckets(total_bytes: int, first_bucket_bytes: int = DDP_FIRST_BUCKET_BYTES,
                bucket_cap_bytes: int = DDP_BUCKET_CAP_BYTES) -> list[int]:
    """Gradient bucket sizes in all-reduce order: first bucket, then full caps, then the rest.
    At most :data:`MAX_DDP_BUCKETS` (a WorkloadError otherwise, before any list is built)."""
    n = 1 + math.ceil(max(0, total_bytes - first_bucket_bytes) / bucket_cap_bytes)
    if n > MAX_DDP_BUCKETS:
        raise WorkloadError(f"ddp: {total_bytes:.3g} gradient bytes in buckets of {bucket_cap_bytes} B make {n:.3g} "
                            f"all-reduces per iteration, more than {MAX_DDP_BUCKETS}; raise bucket_cap_bytes "
                            f"or lower n_params")
    buckets = [min(first_bucket_bytes, total_bytes)]
    left = total_bytes - buckets[0]
    while left > 0:
        buckets.append(min(bucket_cap_bytes, left))
        left -= buckets[-1]
    return buckets


class _Builder:
    """Appends ops to one rank; ``add`` returns the new op id."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def add(self, op: Op) -> int:
        self.ops.append(op)
        return len(self.ops) - 1

    def then(self, op_type: type, **fields: Any) -> int:
        """Add an op that depends on the previous one."""
        return self.add(op_type(deps=(len(self.ops) - 1,) if self.ops else (), **fields))


@_generator
def ddp(n_ranks: int = 8, iterations: int = 2, n_params: float = 1.3e9, bytes_per_grad: int = 4,
        global_batch_tokens: int = 1_048_576, compute_s: float | None = None,
        forward_fraction: float = 1 / 3, optimizer_s: float = 0.0,
        first_bucket_bytes: int = DDP_FIRST_BUCKET_BYTES, bucket_cap_bytes: int = DDP_BUCKET_CAP_BYTES,
        algorithm: str = "ring") -> Workload:
    """PyTorch DDP data-parallel training.

    Per iteration and rank: forward compute, then backward compute split over the
    gradient buckets (first ``first_bucket_bytes`` = 1 MiB, then ``bucket_cap_bytes``
    = 25 MiB each [DDP]); as soon as a bucket's share of backward is done its
    all-reduce of the bucket bytes runs on the communication stream, overlapping the
    rest of backward; the optimizer step waits for all all-reduces.

    Math: gradient bytes G = n_params * bytes_per_grad; buckets = [1 MiB, 25 MiB, ...,
    rest]; compute per iteration (if ``compute_s`` is None) = 6 * n_params * T /
    ACHIEVED_TRAIN_FLOPS with T = global_batch_tokens / n_ranks tokens per rank
    (2PT forward + 4PT backward FLOPs); forward takes ``forward_fraction`` of it and
    bucket b takes backward * G_b / G.

    Defaults: GPT-3 XL, 1.3 B parameters, 1M-token batch [GPT3]; fp32 gradients
    (4 bytes: DDP all-reduces .grad in the parameter dtype, fp32 under AMP);
    400 TFLOP/s per H100 [LLAMA3]: 6*1.3e9*131072/400e12 = 2.56 s per step on 8 ranks.
    """
    p = _Params("ddp")
    n_ranks = p.int("n_ranks", n_ranks, 2)
    iterations = p.int("iterations", iterations, 1)
    n_params = p.float("n_params", n_params)
    bytes_per_grad = p.int("bytes_per_grad", bytes_per_grad, 1)
    global_batch_tokens = p.int("global_batch_tokens", global_batch_tokens, 1)
    forward_fraction = p.float("forward_fraction", forward_fraction, allow_zero=True, below=1.0)
    optimizer_s = p.float("optimizer_s", optimizer_s, allow_zero=True)
    first_bucket_bytes = p.int("first_bucket_bytes", first_bucket_bytes, 1)
    bucket_cap_bytes = p.int("bucket_cap_bytes", bucket_cap_bytes, 1)
    algorithm = p.algorithm("algorithm", "all_reduce", algorithm)
    if compute_s is not None:
        compute_s = p.float("compute_s", compute_s)
    p.done()
    tokens_per_rank = global_batch_tokens / n_ranks
    if compute_s is None:
        compute_s = p.float("compute_s", 6 * n_params * tokens_per_rank / ACHIEVED_TRAIN_FLOPS)
        p.done()
    grad_bytes = max(1, round(n_params * bytes_per_grad))
    buckets = ddp_buckets(grad_bytes, first_bucket_bytes, bucket_cap_bytes)
    forward_s = compute_s * forward_fraction
    backward_s = compute_s - forward_s
    group = tuple(range(n_ranks))

    ranks = []
    for _ in range(n_ranks):
        b = _Builder()
        previous: tuple[int, ...] = ()
        for it in range(iterations):
            fwd = b.add(Compute(duration_s=forward_s, deps=previous, iteration=it, name="forward"))
            reduces, last_compute = [], fwd
            for k, size in enumerate(buckets):
                last_compute = b.add(Compute(duration_s=backward_s * size / grad_bytes, deps=(last_compute,),
                                             iteration=it, name=f"backward.bucket{k}"))
                reduces.append(b.add(Collective(kind="all_reduce", size_bytes=size, group=group,
                                                algorithm=algorithm, deps=(last_compute,), iteration=it,
                                                name=f"grad.bucket{k}")))
            opt = b.add(Compute(duration_s=optimizer_s, deps=(last_compute, *reduces), iteration=it,
                                name="optimizer"))
            previous = (opt,)
        ranks.append(b.ops)
    params = dict(n_ranks=n_ranks, iterations=iterations, n_params=n_params, bytes_per_grad=bytes_per_grad,
                  global_batch_tokens=global_batch_tokens, compute_s=compute_s,
                  forward_fraction=forward_fraction, optimizer_s=optimizer_s,
                  first_bucket_bytes=first_bucket_bytes, bucket_cap_bytes=bucket_cap_bytes, algorithm=algorithm)
    return Workload(n_ranks, ranks, iterations,
                    {"source": "generator:ddp", "parameters": params,
                     "derived": {"gradient_bytes": grad_bytes, "buckets": len(buckets)}})


def pipeline_order(stage: int, stages: int, micro_batches: int, schedule: str) -> list[tuple[str, int]]:
    """Order of forward ("F", j) and backward ("B", j) passes on one stage."""
    if schedule == "gpipe":
        return [("F", j) for j in range(micro_batches)] + [("B", j) for j in range(micro_batches)]
    warmup = min(stages - stage - 1, micro_batches)
    order = [("F", j) for j in range(warmup)]
    for i in range(micro_batches - warmup):
        order += [("F", warmup + i), ("B", i)]
    return order + [("B", j) for j in range(micro_batches - warmup, micro_batches)]


@_generator
def pipeline(n_ranks: int = GPT3_175B_STAGES, iterations: int = 1,
             micro_batches: int = GPT3_175B_MICRO_BATCHES, micro_batch_size: int = 2, seq_len: int = 2048,
             hidden: int = 12288, bytes_per_element: int = 2, forward_s: float | None = None,
             backward_s: float | None = None, schedule: str = "1f1b") -> Workload:
    """Pipeline-parallel training: one stage per rank.

    Each micro-batch's activations, b*s*h*bytes_per_element bytes, go from stage k to
    k+1 after its forward pass, and the same amount of gradient goes back from k+1
    to k after its backward pass. Schedules: "1f1b" (PipeDream-flush, as Megatron-LM)
    or "gpipe" (all forwards, then all backwards).

    Defaults: GPT-3 175B on H100 [NEMO] [GPT3]: PP 8, MBS b=2, s=2048, h=12288, bf16
    (2 bytes): 100,663,296 bytes per micro-batch and direction; 64 micro-batches per
    pipeline per step (GBS 2048 / (MBS 2 * DP 16)). The 9.93 s step spreads over
    m + p - 1 = 71 forward+backward slots, so forward_s = 9.93/71/3 = 46.6 ms and
    backward_s = 2 * forward_s = 93.2 ms per micro-batch and stage.
    """
    p = _Params("pipeline")
    n_ranks = p.int("n_ranks", n_ranks, 2)
    iterations = p.int("iterations", iterations, 1)
    micro_batches = p.int("micro_batches", micro_batches, 1)
    micro_batch_size = p.int("micro_batch_size", micro_batch_size, 1)
    seq_len = p.int("seq_len", seq_len, 1)
    hidden = p.int("hidden", hidden, 1)
    bytes_per_element = p.int("bytes_per_element", bytes_per_element, 1)
    slot_s = GPT3_175B_STEP_S / (GPT3_175B_MICRO_BATCHES + GPT3_175B_STAGES - 1)
    forward_s = p.float("forward_s", slot_s / 3 if forward_s is None else forward_s, allow_zero=True)
    backward_s = p.float("backward_s", 2 * slot_s / 3 if backward_s is None else backward_s, allow_zero=True)
    schedule = p.choice("schedule", schedule, ("1f1b", "gpipe"), "a pipeline schedule")
    p.done()
    act_bytes = micro_batch_size * seq_len * hidden * bytes_per_element

    ranks = []
    for stage in range(n_ranks):
        b = _Builder()
        previous: tuple[int, ...] = ()
        for it in range(iterations):
            sends: list[int] = []
            for phase, j in pipeline_order(stage, n_ranks, micro_batches, schedule):
                forward = phase == "F"
                src = stage - 1 if forward else stage + 1  # where the input comes from
                dst = stage + 1 if forward else stage - 1  # where the output goes
                deps = previous
                if 0 <= src < n_ranks:
                    deps = (b.add(Recv(peer=src, size_bytes=act_bytes, iteration=it,
                                       name=f"recv.{'act' if forward else 'grad'}{j}", deps=previous)),)
                work = b.add(Compute(duration_s=forward_s if forward else backward_s, deps=deps,
                                     iteration=it, name=f"{'forward' if forward else 'backward'}{j}"))
                previous = (work,)
                if 0 <= dst < n_ranks:
                    sends.append(b.add(Send(peer=dst, size_bytes=act_bytes, deps=(work,), iteration=it,
                                            name=f"send.{'act' if forward else 'grad'}{j}")))
            previous = (b.add(Compute(duration_s=0.0, deps=(*previous, *sends), iteration=it,
                                      name="optimizer")),)
        ranks.append(b.ops)
    params = dict(n_ranks=n_ranks, iterations=iterations, micro_batches=micro_batches,
                  micro_batch_size=micro_batch_size, seq_len=seq_len, hidden=hidden,
                  bytes_per_element=bytes_per_element, forward_s=forward_s, backward_s=backward_s,
                  schedule=schedule)
    return Workload(n_ranks, ranks, iterations,
                    {"source": "generator:pipeline", "parameters": params,
                     "derived": {"activation_bytes": act_bytes}})


@_generator
def moe(n_ranks: int = 8, iterations: int = 2, layers: int = 32, hidden: int = 4096, ffn_hidden: int = 14336,
        kv_dim: int = 1024, top_k: int = 2, tokens_per_rank: int = 4096, bytes_per_element: int = 2,
        achieved_flops: float = ACHIEVED_TRAIN_FLOPS, algorithm: str = "direct") -> Workload:
    """Mixture-of-experts training with expert parallelism over all ranks.

    Per MoE layer, forward: attention compute, all-to-all *dispatch* of the routed
    tokens, expert compute, all-to-all *combine*; backward: the same in reverse
    (combine-gradient all-to-all, expert backward, dispatch-gradient all-to-all,
    attention backward). All-to-all size per rank (uniform routing) = T * top_k *
    hidden * bytes_per_element, of which (n-1)/n leaves the rank.
    Compute per layer, forward: attention 2*(2h^2 + 2h*kv_dim)*T / F, experts
    2*(top_k*3*h*ffn_hidden)*T / F; backward twice that (F = achieved_flops).

    Defaults: Mixtral 8x7B [MIXTRAL] with one expert per rank (8 ranks), T = 4096
    tokens per rank per step, bf16: 67,108,864 bytes per all-to-all; 400 TFLOP/s
    per H100 [LLAMA3]: 0.86 ms attention and 7.2 ms experts per layer forward.
    Not modelled: the data-parallel all-reduce of the non-expert gradients.
    """
    p = _Params("moe")
    n_ranks = p.int("n_ranks", n_ranks, 2)
    iterations = p.int("iterations", iterations, 1)
    layers = p.int("layers", layers, 1)
    hidden = p.int("hidden", hidden, 1)
    ffn_hidden = p.int("ffn_hidden", ffn_hidden, 1)
    kv_dim = p.int("kv_dim", kv_dim, 1)
    top_k = p.int("top_k", top_k, 1)
    tokens_per_rank = p.int("tokens_per_rank", tokens_per_rank, 1)
    bytes_per_element = p.int("bytes_per_element", bytes_per_element, 1)
    achieved_flops = p.float("achieved_flops", achieved_flops)
    algorithm = p.algorithm("algorithm", "all_to_all", algorithm)
    p.done()
    a2a_bytes = tokens_per_rank * top_k * hidden * bytes_per_element
    attention_s = 2 * (2 * hidden**2 + 2 * hidden * kv_dim) * tokens_per_rank / achieved_flops
    experts_s = 2 * (top_k * 3 * hidden * ffn_hidden) * tokens_per_rank / achieved_flops
    group = tuple(range(n_ranks))

    ranks = []
    for _ in range(n_ranks):
        b = _Builder()
        for it in range(iterations):
            def a2a(name: str) -> None:
                b.then(Collective, kind="all_to_all", size_bytes=a2a_bytes, group=group,
                       algorithm=algorithm, iteration=it, name=name)

            for layer in range(layers):
                b.then(Compute, duration_s=attention_s, iteration=it, name=f"L{layer}.attn.fwd")
                a2a(f"L{layer}.dispatch")
                b.then(Compute, duration_s=experts_s, iteration=it, name=f"L{layer}.experts.fwd")
                a2a(f"L{layer}.combine")
            for layer in reversed(range(layers)):
                a2a(f"L{layer}.combine.bwd")
                b.then(Compute, duration_s=2 * experts_s, iteration=it, name=f"L{layer}.experts.bwd")
                a2a(f"L{layer}.dispatch.bwd")
                b.then(Compute, duration_s=2 * attention_s, iteration=it, name=f"L{layer}.attn.bwd")
        ranks.append(b.ops)
    params = dict(n_ranks=n_ranks, iterations=iterations, layers=layers, hidden=hidden, ffn_hidden=ffn_hidden,
                  kv_dim=kv_dim, top_k=top_k, tokens_per_rank=tokens_per_rank,
                  bytes_per_element=bytes_per_element, achieved_flops=achieved_flops, algorithm=algorithm)
    return Workload(n_ranks, ranks, iterations,
                    {"source": "generator:moe", "parameters": params,
                     "derived": {"all_to_all_bytes": a2a_bytes, "attention_fwd_s": attention_s,
                                 "experts_fwd_s": experts_s}})


@_generator
def tp_decode(n_ranks: int = 2, iterations: int = 32, layers: int = 80, hidden: int = 8192, batch: int = 1,
              bytes_per_element: int = 2, token_s: float | None = None, algorithm: str = "ring") -> Workload:
    """Tensor-parallel inference decode: one iteration per generated token.

    Per token and layer (Megatron tensor parallelism): attention compute, an
    all-reduce of batch*hidden*bytes_per_element bytes, MLP compute, a second
    all-reduce. The all-reduces are small, so the job is latency-bound.
    Compute per token (if ``token_s`` is None) = 18.58 ms * 2 / n_ranks: the
    measured TP2 inter-token latency [NIM], scaled by 2/n_ranks because decode at
    batch 1 reads all weights once per token and each rank holds 1/n_ranks of them.

    Defaults: Llama 3.3 70B [NIM]: 80 layers, hidden 8192, bf16 activations,
    batch 1: 160 all-reduces of 16,384 bytes per token; TP2.
    """
    p = _Params("tp_decode")
    n_ranks = p.int("n_ranks", n_ranks, 2)
    iterations = p.int("iterations", iterations, 1)
    layers = p.int("layers", layers, 1)
    hidden = p.int("hidden", hidden, 1)
    batch = p.int("batch", batch, 1)
    bytes_per_element = p.int("bytes_per_element", bytes_per_element, 1)
    if token_s is not None:
        token_s = p.float("token_s", token_s)
    algorithm = p.algorithm("algorithm", "all_reduce", algorithm)
    p.done()
    if token_s is None:
        token_s = LLAMA33_70B_TP2_TOKEN_S * 2 / n_ranks
    ar_bytes = batch * hidden * bytes_per_element
    half_layer_s = token_s / (2 * layers)
    group = tuple(range(n_ranks))

    ranks = []
    for _ in range(n_ranks):
        b = _Builder()
        for it in range(iterations):
            for layer in range(layers):
                for part in ("attn", "mlp"):
                    b.then(Compute, duration_s=half_layer_s, iteration=it, name=f"L{layer}.{part}")
                    b.then(Collective, kind="all_reduce", size_bytes=ar_bytes, group=group,
                           algorithm=algorithm, iteration=it, name=f"L{layer}.{part}.allreduce")
        ranks.append(b.ops)
    params = dict(n_ranks=n_ranks, iterations=iterations, layers=layers, hidden=hidden, batch=batch,
                  bytes_per_element=bytes_per_element, token_s=token_s, algorithm=algorithm)
    return Workload(n_ranks, ranks, iterations,
                    {"source": "generator:tp_decode", "parameters": params,
                     "derived": {"all_reduce_bytes": ar_bytes}})


GENERATORS: dict[str, Callable[..., Workload]] = {
    "ddp": ddp,
    "pipeline": pipeline,
    "moe": moe,
    "tp_decode": tp_decode,
}
