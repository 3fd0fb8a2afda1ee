"""ER, experience replay (Chaudhry et al., "On Tiny Episodic Memories in Continual Learning", 2019;
Rolnick et al., "Experience Replay for Continual Learning", NeurIPS 2019).

After each task a few of its training records (1% by default, or a fixed count; uniform or
reservoir selection) enter a replay buffer, and every later task trains on its own records mixed
with the buffer's. The mix is the plain union by default; `replay_ratio` asks for a fixed share of
buffer records per batch instead, reached by repeating buffer records. The buffer holds record
references only (task name and record id), is saved with every checkpoint and survives a resume.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcit.core.configs import ConfigError, option
from mcit.methods.base import Method
from mcit.methods.components.replay import BufferOptions, ReplayBuffer, mix
from mcit.methods.registry import register


@dataclass
class EROptions(BufferOptions):
    """Options of ER: the buffer's, and how buffer records mix into training."""

    replay_ratio: float | None = option(None, "share of buffer records in the training data (e.g. 0.2), reached by "
                                              "repeating buffer records; null: the plain union of task and buffer",
                                        min=0, max=0.95, unconfirmed=True)

    def validate(self) -> None:
        super().validate()
        if self.replay_ratio is not None and self.replay_ratio >= 1:
            raise ConfigError("config key 'method.replay_ratio': must be below 1")


@register
class ER(Method):
    name = "er"
    summary = "replay a small buffer of earlier tasks' records mixed into each new task's training data"
    family = "replay"
    Options = EROptions

    def __init__(self, options: EROptions | None = None):
        super().__init__(options)
        self.buffer = ReplayBuffer.from_options(self.options)

    def train_data(self, task, ctx):
        return mix(task.train, self.buffer.records(ctx.tasks), self.options.replay_ratio, ctx.seed, "er", task.name)

    def after_task(self, model, task, ctx) -> None:
        self.buffer.add_task(task, ctx.seed)

    def state_dict(self):
        return {"buffer": self.buffer.state_dict()}

    def load_state_dict(self, state) -> None:
        self.buffer.load_state_dict(state.get("buffer", {}))

    def report(self):
        return {"buffer": self.buffer.counts()}
