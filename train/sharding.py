"""How `train dpo|sft` spreads its models over the processes of `accelerate launch`.

accelerate does DDP, FSDP and DeepSpeed itself; this module adds what it lacks for DPO:
- DeepSpeed's micro-batch size, which accelerate otherwise reads from a prepared DataLoader (ours draws its own
  batches), and on CPU processes the gloo backend: accelerate finds no distributed backend for a CPU-only
  DeepSpeed launch and would start each process alone.
- FSDP on CPU processes. accelerate 1.16 switches FSDP on only for accelerator devices (AcceleratorState picks
  it among MULTI_GPU/XPU/…, never MULTI_CPU), so an FSDP launch on CPUs silently ran DDP. torch's FSDP2
  (`fully_shard`) shards over gloo on CPUs, so under such a launch the accelerator is switched to FSDP here,
  with the launch's own plugin, and everything after (prepare, clipping, checkpoints) is accelerate's FSDP2 path.
- the frozen reference of a full fine-tune, sharded in the policy's units under FSDP2 (accelerate shards only
  what it prepares for training);
- the trained weights gathered whole onto the main process for the saved model folder.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from accelerate import Accelerator, PartialState, init_empty_weights
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin, InitProcessGroupKwargs
from accelerate.utils.fsdp_utils import fsdp2_prepare_model

from data_schemas import UserError


def _launched_with(kind: str) -> bool:
    return os.environ.get(f"ACCELERATE_USE_{kind}", "false").lower() == "true"


def make_accelerator(batch_size: int, **kwargs: Any) -> Accelerator:
    """An Accelerator (kwargs as accelerate's) for micro-batches of `batch_size` pairs; under an FSDP or DeepSpeed
    launch on CPU processes, one that really shards over gloo."""
    if _launched_with("DEEPSPEED") and torch.accelerator.current_accelerator() is None:
        # Without a backend named, accelerate leaves every CPU process a world of its own under DeepSpeed.
        kwargs["kwargs_handlers"] = [InitProcessGroupKwargs(backend="gloo")]
    accelerator = Accelerator(**kwargs)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:  # else prepare() asks for a DataLoader
        accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = batch_size
    if _launched_with("FSDP") and accelerator.distributed_type == DistributedType.MULTI_CPU:
        plugin = FullyShardedDataParallelPlugin()  # read from the launch's environment, as accelerate does
        if plugin.fsdp_version != 2:
            raise UserError("accelerate config: FSDP on CPU processes needs `fsdp_version: 2` in fsdp_config "
                            "(train/accelerate/fsdp.yaml has it)")
        if accelerator.mixed_precision != "no":
            plugin.set_mixed_precision(accelerator.mixed_precision)
        # What AcceleratorState sets for FSDP on a GPU launch: the type in both shared states, and the plugin.
        accelerator.state.fsdp_plugin = plugin
        accelerator.state.distributed_type = DistributedType.FSDP
        PartialState().distributed_type = DistributedType.FSDP
    return accelerator


def prepare_reference(accelerator: Accelerator, reference: torch.nn.Module) -> torch.nn.Module:
    """The frozen reference on this process: under FSDP2 sharded in the policy's units, else whole."""
    if accelerator.is_fsdp2:
        return fsdp2_prepare_model(accelerator, reference)
    return reference.to(accelerator.device)


def held_share(model: torch.nn.Module) -> float:
    """The share of the model's parameter elements this process holds: 1.0 unless FSDP2 (DTensors) or ZeRO-3
    (`ds_tensor` partitions of `ds_numel` elements) sharded them."""
    from torch.distributed.tensor import DTensor

    def held(p: torch.nn.Parameter) -> int:
        if isinstance(p, DTensor):
            return p.to_local().numel()
        return p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel()

    params = list(model.parameters())
    return sum(map(held, params)) / sum(getattr(p, "ds_numel", p.numel()) for p in params)


def parallelism(accelerator: Accelerator, policy: torch.nn.Module, reference: torch.nn.Module | None) -> str:
    """One line for the model card: how the run was spread over its processes and what process 0 held."""
    if accelerator.num_processes == 1:
        return "one process"
    kind = str(accelerator.distributed_type).split(".")[-1]
    shares = f"process 0 held {held_share(policy):.0%} of the policy's parameters"
    if reference is not None:
        shares += f" and {held_share(reference):.0%} of the frozen reference's"
    return f"{kind}, {accelerator.num_processes} processes; {shares}"


def is_sharded(accelerator: Accelerator) -> bool:
    """Whether each process holds only a shard of the prepared model's parameters (FSDP, DeepSpeed ZeRO-3)."""
    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    return (accelerator.distributed_type == DistributedType.DEEPSPEED
            and accelerator.deepspeed_config["zero_optimization"]["stage"] == 3)


def whole_model(accelerator: Accelerator, model: torch.nn.Module,
                unsharded: Callable[[], torch.nn.Module]) -> torch.nn.Module | None:
    """The prepared `model` whole on the main process (None on the others; every process must call this).
    Sharded weights are gathered and become the parameters of `unsharded()`, a fresh module of the same structure
    made without weights of its own (accelerate's init_empty_weights), so the main process holds the weights once,
    not the gathered copy and a second, fresh one. Each takes the dtype the fresh module gives it."""
    if not is_sharded(accelerator):
        return accelerator.unwrap_model(model) if accelerator.is_main_process else None
    state = accelerator.get_state_dict(model)  # a collective: every process takes part
    if not accelerator.is_main_process:
        return None
    with init_empty_weights():  # parameters on the meta device; buffers (not in every state dict) made as usual
        whole = unsharded()
    dtypes = {name: tensor.dtype for name, tensor in whole.state_dict().items()}
    whole.load_state_dict({name: tensor.to(dtypes[name]) if name in dtypes else tensor
                           for name, tensor in state.items()}, assign=True)
    return whole
