"""Multi-process launches: which process is the main one, a barrier before the `Accelerator`
exists, and which distributed setups the loop supports.

`accelerate launch` and `torchrun` start the same command in every process and tell each its
place through the environment (RANK, WORLD_SIZE). The run directory is prepared before the loop
builds its `Accelerator`, and every process must agree on what it finds there: if the main
process created `config.yaml` while another was still checking the folder, that one would take
the fresh run for an unfinished one and stop. `wait_for_everyone` starts accelerate's process
state early (the `Accelerator` built later joins the same state) so that the folder is checked by
all, then written by the main process alone, with a barrier in between.

Without a GPU, accelerate runs several launched processes together only when told to use the
CPU; otherwise each would run the whole stream on its own and write the same files. `on_cpu`
therefore also answers yes for a multi-process launch on a machine without an accelerator.

Supported setups (`check_setup`, docs/distributed.md): one process; DDP on GPUs or on the CPU
(gloo); DeepSpeed ZeRO-2 for methods that do not read gradients, without gradient accumulation.
Refused, with the reason: FSDP and DeepSpeed ZeRO-3 (their parameters are shards, and the loop's
evaluation and checkpoints read whole parameters on each process), and under DeepSpeed any method
that reads or edits gradients (DeepSpeed keeps them in its own partitioned buffers and takes the
optimiser step inside backward, before a method's `after_backward` could see them).
"""

from __future__ import annotations

import os

from mcit.core.errors import UserError


def launched_processes() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """Whether this is the launch's main process (the only one that writes files)."""
    return os.environ.get("RANK", "0") == "0"


def on_cpu(device: str) -> bool:
    """Whether the run uses the CPU: `device: cpu`, or several launched processes and no GPU."""
    if device == "cpu":
        return True
    if launched_processes() <= 1:
        return False
    import torch

    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6; CUDA alone before
    return not (accelerator.is_available() if accelerator is not None else torch.cuda.is_available())


def wait_for_everyone(device: str = "auto") -> None:
    """A barrier over the launched processes; nothing without a launcher. `device` is the run's
    `device` setting, so the process group starts where the loop's `Accelerator` will expect it."""
    if launched_processes() <= 1:
        return
    from accelerate import PartialState

    PartialState(cpu=on_cpu(device)).wait_for_everyone()


def reads_gradients(method) -> bool:
    """Whether a method reads or edits gradients, or asks the loop for extra ones
    (`Method.reads_gradients`, or an `after_backward` of its own)."""
    from mcit.methods.base import Method

    return bool(getattr(method, "reads_gradients", False)) or type(method).after_backward is not Method.after_backward


def check_setup(accelerator, method, method_name: str, grad_accumulation: int) -> None:
    """Refuse, before anything runs, a distributed setup the loop would get wrong."""
    from accelerate.utils import DistributedType

    launched = launched_processes()
    if launched > 1 and accelerator.num_processes != launched:
        raise UserError(f"{launched} processes were launched but accelerate joined {accelerator.num_processes}; "
                        "each would run the whole stream on its own. Launch with one of the configs in "
                        "mcit/configs/accelerate (python -m mcit.configs) or torchrun; see docs/distributed.md")
    kind = accelerator.distributed_type
    if kind == DistributedType.FSDP:
        raise UserError("FSDP is not supported yet: its parameters are shards (DTensors), and mcit's evaluation "
                        "(each process generates for its share of the test records) and checkpoints read whole "
                        "parameters on each process; use the ddp config, or deepspeed-zero2 for methods that do "
                        "not read gradients (docs/distributed.md)")
    if kind != DistributedType.DEEPSPEED:
        return
    stage = int(getattr(accelerator.state.deepspeed_plugin, "zero_stage", 0) or 0)
    if stage >= 3:
        raise UserError("DeepSpeed ZeRO-3 is not supported yet: it partitions the parameters themselves, and "
                        "mcit's evaluation and checkpoints read whole parameters on each process"
                        + (f"; method '{method_name}' also reads gradients, which ZeRO keeps in its own "
                           "partitioned buffers" if reads_gradients(method) else "")
                        + "; use the ddp config (docs/distributed.md)")
    if reads_gradients(method):
        raise UserError(f"method '{method_name}' reads or edits gradients, which DeepSpeed keeps in its own "
                        "partitioned buffers and steps on inside backward, before the method could see them; "
                        "run it with the ddp config (docs/distributed.md)")
    if grad_accumulation > 1:
        raise UserError(f"config key 'train.grad_accumulation': {grad_accumulation} is not supported under "
                        "DeepSpeed (it steps at every backward of mcit's loop); use 1 and a larger "
                        "train.batch_size, or the ddp config")


def configure_deepspeed(accelerator, per_process_batch: int) -> None:
    """Tell DeepSpeed the per-process micro-batch (it cannot read it from a data loader: the loop
    batches records itself). Nothing outside DeepSpeed."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.DEEPSPEED:
        return
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    config["train_micro_batch_size_per_gpu"] = per_process_batch
    config["gradient_accumulation_steps"] = 1
