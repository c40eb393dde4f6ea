"""Several processes, one job: joining a ``jax.distributed`` run from the command line.

``python -m research compare ... --coordinator-address HOST:PORT
--num-processes N --process-id I`` on each of N processes (hosts, or several
processes of one host) makes them one JAX job: the grid's runs are sharded over
every process's devices, and process 0 alone writes the results folder
(:func:`research.devices.writes_results`). ``--coordinator-address auto`` takes
the three from the cluster as :func:`jax.distributed.initialize` does (SLURM,
Open MPI, Cloud TPU, Kubernetes). Without the flags nothing happens here: one
process, as always.

A job must never hang on a process that is missing, so joining is done in two
steps. First the processes meet at ``HOST:PORT`` over a plain TCP socket
(:func:`_meet`): process 0 listens and waits ``--join-timeout`` seconds for the
others, then names in one line those that did not come. They keep these
sockets open for the whole job: when one process ends without saying it
finished (an error, ``kill -9``, a lost host, caught by TCP keepalive), the
others see its socket close and stop at once in one line naming it
(:class:`_Watch`), instead of waiting in a collective for JAX's heartbeat
timeout and its multi-line abort. Then JAX's own coordinator starts on the
same port (:func:`jax.distributed.initialize`; on CPU with gloo collectives).

Examples:
  >>> Processes().single
  True
  >>> Processes("127.0.0.1:4321", num_processes=2, process_id=5).check()
  Traceback (most recent call last):
  ...
  ValueError: --process-id must be 0 .. 1 (one per process of --num-processes 2), got 5.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import selectors
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence

import jax
from jax.experimental import multihost_utils

AUTO = "auto"
# A process that vanishes without closing its socket (a host powered off) is
# noticed by TCP keepalive after about IDLE + INTERVAL * COUNT seconds.
_KEEPALIVE_IDLE, _KEEPALIVE_INTERVAL, _KEEPALIVE_COUNT = 10, 5, 3
_FINISHED = "finished"  # what a process says before it ends well
# How long an error waits for the watch to tell whether another process stopped first.
_NOTICE_SECONDS = 2.0
# How long a process that finished waits at exit for the others (JAX's shutdown barrier):
# process 0 writes the summary and plots after the last collective, which may take long.
# A process that dies meanwhile still stops the others at once (the watch).
_EXIT_WAIT_SECONDS = 24 * 3600


@dataclasses.dataclass(frozen=True)
class Processes:
  """Which job this process joins (the ``--coordinator-address`` flags).

  Attributes:
    coordinator_address: ``HOST:PORT`` where process 0 listens (every process
      gives the same); ``"auto"``: from the cluster; ``""``: one process.
    num_processes: how many processes the job has (``0``: from the cluster).
    process_id: this process's number, ``0 .. num_processes - 1`` (``-1``:
      from the cluster).
    join_timeout: seconds to wait for the other processes to come.
    local_device_ids: the devices of this host that this process uses (a
      cluster's choice under ``auto``, such as one GPU per SLURM task);
      empty: all of them.
  """

  coordinator_address: str = ""
  num_processes: int = 0
  process_id: int = -1
  join_timeout: int = 300
  local_device_ids: tuple[int, ...] = ()

  @property
  def single(self) -> bool:
    """Whether this is a one-process run (no flag given)."""
    return not self.coordinator_address and self.num_processes == 0 and self.process_id == -1

  def check(self) -> None:
    """Raises a one-line ``ValueError`` naming a bad or missing flag."""
    if self.single:
      return
    if self.join_timeout <= 0:
      raise ValueError(
          f"--join-timeout must be a positive number of seconds, got {self.join_timeout}.")
    if self.coordinator_address == AUTO:
      return  # a flag given beside auto overrides what the cluster says (checked once detected)
    if not self.coordinator_address or self.num_processes == 0 or self.process_id == -1:
      raise ValueError(
          "a job of several processes needs --coordinator-address HOST:PORT, --num-processes N"
          " and --process-id I together (or --coordinator-address auto on a cluster).")
    _host_and_port(self.coordinator_address)
    if self.num_processes < 1:
      raise ValueError(f"--num-processes must be at least 1, got {self.num_processes}.")
    if not 0 <= self.process_id < self.num_processes:
      raise ValueError(
          f"--process-id must be 0 .. {self.num_processes - 1} (one per process of"
          f" --num-processes {self.num_processes}), got {self.process_id}.")


def _host_and_port(address: str) -> tuple[str, int]:
  """``("host", port)`` of ``HOST:PORT``, or a one-line ``ValueError``.

  Examples:
    >>> _host_and_port("node-01:1234"), _host_and_port("[::1]:80")
    (('node-01', 1234), ('::1', 80))
  """
  host, _, port = address.rpartition(":")
  host = host.strip("[]")
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(
        f"--coordinator-address must be HOST:PORT (process 0's host name or address and a"
        f" free port, e.g. node-01:12345) or auto, got {address!r}.")
  return host, int(port)


def detected(processes: Processes) -> Processes:
  """``processes`` with what ``auto`` leaves unset taken from the cluster, as JAX would."""
  if processes.coordinator_address != AUTO:
    return processes
  from jax._src import clusters  # JAX's own detection (jax.distributed.initialize's)

  address, count, number, local = clusters.ClusterEnv.auto_detect_unset_distributed_params(
      None, processes.num_processes or None,
      None if processes.process_id == -1 else processes.process_id, None, None,
      processes.join_timeout)
  if address is None or count is None or number is None:
    raise ValueError(
        "--coordinator-address auto found no cluster (SLURM, Open MPI, Cloud TPU, Kubernetes)"
        " to take the processes from; give --coordinator-address HOST:PORT --num-processes N"
        " --process-id I instead.")
  found = dataclasses.replace(processes, coordinator_address=address, num_processes=count,
                              process_id=number, local_device_ids=tuple(local or ()))
  found.check()
  return found


class _Joined:
  """This process's part of the job, once joined (one per process)."""

  processes: Processes | None = None
  watch: "_Watch | None" = None


_joined = _Joined()


def join(processes: Processes) -> None:
  """Joins the job ``processes`` names; call before JAX computes anything.

  Does nothing for a one-process run. Raises a one-line ``ValueError`` for a
  bad flag, a process that does not come within ``join_timeout``, or JAX
  already started.
  """
  processes.check()
  if processes.single or _joined.processes is not None:
    return
  processes = detected(processes)
  from jax._src import xla_bridge

  if xla_bridge.backends_are_initialized():
    raise ValueError("jax.distributed must start before JAX computes anything; join first.")
  peers = _meet(processes)
  _joined.processes = processes
  _joined.watch = _Watch(processes.process_id, processes.num_processes, peers)
  _joined.watch.start()
  # Cross-process collectives on CPU (gloo is JAX's default; said, so that it stays so).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
      processes.coordinator_address, processes.num_processes, processes.process_id,
      local_device_ids=list(processes.local_device_ids) or None,
      initialization_timeout=processes.join_timeout, shutdown_timeout_seconds=_EXIT_WAIT_SECONDS)
  with _quiet_stdout():  # gloo says on stdout that it connected, above the command's table
    multihost_utils.sync_global_devices("research: every process joined")


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
  """The block's output on file descriptor 1 (C++ libraries' too) is dropped."""
  sys.stdout.flush()
  saved = os.dup(1)
  try:
    with open(os.devnull, "w") as null:
      os.dup2(null.fileno(), 1)
    yield
  finally:
    sys.stdout.flush()
    os.dup2(saved, 1)
    os.close(saved)


def run(command: Callable[[], int]) -> int:
  """``command()``'s exit status, after which this process leaves the job (:func:`leave`).

  An error raised because another process stopped (a collective it left) is
  not this process's to report: the watch's one line naming that process is.
  Any other error is printed and ends the process at once (status 1), so that
  the others stop too instead of waiting for it at JAX's exit.
  """
  try:
    status = command()
  except BaseException:
    watch = _joined.watch
    if watch is None:
      raise
    if watch.stopping.wait(_NOTICE_SECONDS):
      while True:  # the watch writes its line and ends the process
        time.sleep(1)
    traceback.print_exc()
    status = 1
  return leave(status)


def leave(status: int) -> int:
  """Ends this process's part of the job after its command returned ``status``.

  On success the others are told so (its socket then closes quietly) and JAX
  waits for every process at exit. After a failure the process ends now,
  skipping JAX's exit, which would wait for processes that are stopping
  because of it. Returns ``status`` (one-process runs: at once).
  """
  watch = _joined.watch
  if watch is None:
    return status
  if status == 0:
    watch.finish()
    return status
  _exit_now(status)


def _exit_now(status: int) -> None:
  """Ends the process at once with ``status``, its output flushed, skipping JAX's exit."""
  for stream in (sys.stdout, sys.stderr):
    with contextlib.suppress(Exception):
      stream.flush()
  os._exit(status)


def _keep_alive(connection: socket.socket) -> socket.socket:
  connection.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
  for option, value in (("TCP_KEEPIDLE", _KEEPALIVE_IDLE), ("TCP_KEEPINTVL", _KEEPALIVE_INTERVAL),
                        ("TCP_KEEPCNT", _KEEPALIVE_COUNT)):
    if hasattr(socket, option):  # Linux; elsewhere the system's defaults
      connection.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
  return connection


def _meet(processes: Processes) -> dict[int, socket.socket]:
  """Every other process's socket (process 0) or process 0's (the others), once all came."""
  if processes.process_id == 0:
    return _gather(processes)
  return {0: _reach(processes)}


def _listen(port: int) -> socket.socket:
  """A socket listening on ``port`` on every address, as JAX's coordinator will."""
  if socket.has_dualstack_ipv6():
    return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
  return socket.create_server(("", port))


def _gather(processes: Processes) -> dict[int, socket.socket]:
  """Process 0: waits for processes 1 .. N-1 to connect and say who they are, then lets them go."""
  _, port = _host_and_port(processes.coordinator_address)
  try:
    server = _listen(port)
  except OSError as error:
    raise ValueError(f"process 0 cannot listen at {processes.coordinator_address}: {error};"
                     " choose another port in --coordinator-address.") from None
  peers: dict[int, socket.socket] = {}
  deadline = time.monotonic() + processes.join_timeout
  count = processes.num_processes
  with server:
    while len(peers) < count - 1:
      server.settimeout(max(0.0, deadline - time.monotonic()))
      try:
        connection, _ = server.accept()
      except TimeoutError:
        missing = [number for number in range(1, count) if number not in peers]
        _refuse(peers, f"{_named(missing)} of {count} did not join")
        raise ValueError(
            f"{_named(missing)} of {count} did not join {processes.coordinator_address} within"
            f" {processes.join_timeout} s (--join-timeout); start every process with the same"
            " --coordinator-address and --num-processes.") from None
      number, problem = _introduction(connection, count, peers)
      if problem:
        with contextlib.suppress(OSError):
          connection.sendall(f"refused {problem}\n".encode())
        connection.close()
        continue
      peers[number] = _keep_alive(connection)
  for connection in peers.values():
    connection.sendall(b"go\n")
  return peers


def _introduction(connection: socket.socket, count: int,
                  peers: dict[int, socket.socket]) -> tuple[int, str]:
  """The process number a newcomer gives, and what is wrong with it ("" if nothing)."""
  connection.settimeout(10)
  try:
    words = _read_line(connection).split()
  except OSError:
    return -1, "no introduction"
  if len(words) != 3 or words[0] != "process" or not all(w.isdigit() for w in words[1:]):
    return -1, "not a process of this job"
  number, its_count = int(words[1]), int(words[2])
  if its_count != count:
    return number, f"--num-processes is {count} at process 0, {its_count} at process {number}"
  if number in peers:
    return number, f"two processes were started with --process-id {number}"
  return number, ""


def _reach(processes: Processes) -> socket.socket:
  """Processes 1 .. N-1: connects to process 0, says who it is, and waits for all to come."""
  host, port = _host_and_port(processes.coordinator_address)
  deadline = time.monotonic() + processes.join_timeout
  absent = (f"process 0 did not answer at {processes.coordinator_address} within"
            f" {processes.join_timeout} s (--join-timeout); start it with the same"
            " --coordinator-address, on that host.")
  while True:
    try:
      connection = socket.create_connection((host, port), timeout=5)
      break
    except OSError:
      if time.monotonic() >= deadline:
        raise ValueError(absent) from None
      time.sleep(0.2)
  connection.sendall(f"process {processes.process_id} {processes.num_processes}\n".encode())
  connection.settimeout(processes.join_timeout + 30)  # process 0 answers within its own timeout
  try:
    answer = _read_line(connection)
  except OSError:
    answer = ""
  if answer == "go":
    return _keep_alive(connection)
  connection.close()
  if answer.startswith("refused "):
    raise ValueError(f"process 0 refused process {processes.process_id}: {answer[8:]}.")
  raise ValueError(absent)


def _read_line(connection: socket.socket) -> str:
  """One line from ``connection`` (without its newline); "" if it closed first."""
  data = b""
  while not data.endswith(b"\n"):
    chunk = connection.recv(1)
    if not chunk:
      return ""
    data += chunk
  return data.decode(errors="replace").strip()


def _refuse(peers: dict[int, socket.socket], reason: str) -> None:
  for connection in peers.values():
    with contextlib.suppress(OSError):
      connection.sendall(f"refused {reason}\n".encode())
    connection.close()


def _named(numbers: Sequence[int]) -> str:
  """``process 1`` or ``processes 1, 3``.

  Examples:
    >>> _named([1]), _named([1, 3])
    ('process 1', 'processes 1, 3')
  """
  listed = ", ".join(map(str, numbers))
  return f"process {listed}" if len(numbers) == 1 else f"processes {listed}"


class _Watch(threading.Thread):
  """Ends this process in one line when another process of the job stops before finishing.

  Process 0 watches every other process; the others watch process 0, which
  tells them which process stopped before it ends itself.
  """

  def __init__(self, number: int, count: int, peers: dict[int, socket.socket]):
    super().__init__(name="processes watch", daemon=True)
    self.number = number
    self.count = count
    self.peers = peers
    self.finished: set[int] = set()
    self.lock = threading.Lock()
    self.stopping = threading.Event()  # another process stopped: this one ends

  def finish(self) -> None:
    """Tells the other processes that this one ends well."""
    with self.lock:
      for connection in self.peers.values():
        with contextlib.suppress(OSError):
          connection.sendall(f"{_FINISHED}\n".encode())

  def run(self) -> None:
    selector = selectors.DefaultSelector()
    for number, connection in self.peers.items():
      connection.settimeout(None)
      selector.register(connection, selectors.EVENT_READ, number)
    buffers = {number: b"" for number in self.peers}
    while True:
      for key, _ in selector.select():
        number = key.data
        try:
          data = key.fileobj.recv(4096)
        except OSError:
          data = b""
        if not data:
          selector.unregister(key.fileobj)
          if number not in self.finished:
            self._stop(number)
          continue
        buffers[number] += data
        *lines, buffers[number] = buffers[number].split(b"\n")
        for line in lines:
          words = line.decode(errors="replace").split()
          if words == [_FINISHED]:
            self.finished.add(number)
          elif len(words) == 2 and words[0] == "stopped" and words[1].isdigit():
            self._stop(int(words[1]))  # process 0 relays who stopped

  def _stop(self, number: int) -> None:
    """Says which process stopped, tells the others (process 0), and ends this one."""
    self.stopping.set()
    with self.lock:
      for other, connection in self.peers.items():
        if other != number:
          with contextlib.suppress(OSError):
            connection.sendall(f"stopped {number}\n".encode())
    print(f"error: process {number} of {self.count} stopped before it finished (see its own"
          f" output), so process {self.number} stops too; process 0 keeps the finished runs:"
          " rerun the same command on every process to resume.", file=sys.__stderr__, flush=True)
    _exit_now(1)


def done_line() -> str:
  """What a process other than 0 prints at its end: its share is trained, process 0 wrote the rows."""
  return (f"process {jax.process_index()} of {jax.process_count()}: done; its runs are in"
          " process 0's results folder.")
