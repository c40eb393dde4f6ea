"""How a command runs, as opposed to what it computes: the flags beside ``--out``.

A :class:`research.config.Config` (or a study's settings) determines every
number, and its hash names the runs. :class:`RunOptions` holds the rest of
a command's flags: when to save checkpoints, and so on. Changing one never
changes a result or a run id, so a rerun may change them and still resume.
Each field's comment is its ``--help`` text.

Example:
  >>> options = RunOptions(checkpoint_every=500)
  >>> options.checkpoints()
  Schedule(every_steps=500, minutes=5.0)
"""

from __future__ import annotations

import dataclasses

from research import checkpoints as checkpoints_lib
from research import distributed


@dataclasses.dataclass(frozen=True)
class RunOptions:
  """A command's flags that never change a result (see the module's docstring)."""

  checkpoint_every: int = 0
  """save each program's state every N steps (rounded up to a multiple of --eval-every)
  into the folder, so that a rerun after a kill resumes it mid-run; 0: not by steps"""
  checkpoint_minutes: float = 5.0
  """save each program's state once this many minutes have passed since its start or
  last save (at the next evaluation); 0: not by time"""
  tensorboard: bool = False
  """also write each finished run's history (test accuracy, losses, per-layer inactive and
  dead fractions) as TensorBoard event files into <out>/tensorboard; needs
  pip install surrogate-activations[tensorboard]"""
  coordinator_address: str = ""
  """several processes (hosts) as one job: HOST:PORT where process 0 listens, the same on
  every process, with --num-processes and --process-id; auto: all three from the cluster
  (SLURM, Open MPI, Cloud TPU); empty: this process alone. Only process 0 writes --out"""
  num_processes: int = 0
  """how many processes the job has (with --coordinator-address)"""
  process_id: int = -1
  """this process's number, 0 .. --num-processes - 1 (with --coordinator-address)"""
  join_timeout: int = 300
  """seconds the processes of a job wait for each other to start; a process that has not
  come by then is named and every process stops"""

  def processes(self) -> distributed.Processes:
    """Which job this process joins (:class:`research.distributed.Processes`)."""
    return distributed.Processes(self.coordinator_address, self.num_processes, self.process_id,
                                 self.join_timeout)

  def checkpoints(self) -> checkpoints_lib.Schedule:
    """When programs save their state (:class:`research.checkpoints.Schedule`)."""
    return checkpoints_lib.Schedule(self.checkpoint_every, self.checkpoint_minutes)
