"""Tests of research.results: config checks, exact round trips, appends, atomic rewrites, resume."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from research import atomic, csv_rows, results
from research.results import ResultsFolder

CONFIG = {
    "dataset": "mnist1d",
    "activations": ("relu", "necro_relu(negative_slope=[0.05, 0.1])"),
    "learning_rates": (0.01,),
    "steps": 100,
}


def _run(run_id: str, **values) -> dict:
  row = {"run_id": run_id, "activation": run_id.split("|")[0], "seed": 0,
         "learning_rate": 0.01, "diverged": False, "diverged_step": None,
         "test_accuracy": 0.5, "test_loss": 1.0}
  row.update(values)
  return row


def _history(run_id: str, steps=(0, 50, 100), loss: float = 1.0) -> list[dict]:
  return [{"run_id": run_id, "step": step, "diverged": False, "train_loss": loss / (step + 1)}
          for step in steps]


def _files(folder: ResultsFolder) -> list[str]:
  return sorted(name for name in os.listdir(folder.path) if name != results.LOCK_FILE)


@pytest.fixture
def open_folder(tmp_path):
  """Opens folders and closes (unlocks) them after the test."""
  opened = []

  def opener(path, config, **kwargs):
    folder = ResultsFolder(path, config, **kwargs)
    opened.append(folder)
    return folder

  yield opener
  for folder in opened:
    folder.close()


# --- the config --------------------------------------------------------------


def test_creates_folder_and_writes_config_once(tmp_path, open_folder):
  folder = open_folder(tmp_path / "a" / "b", CONFIG)
  assert folder.path == tmp_path / "a" / "b"
  text = (folder.path / results.CONFIG_FILE).read_text()
  assert json.loads(text) == {
      key: list(value) if isinstance(value, tuple) else value
      for key, value in CONFIG.items()
  } | {results.FORMAT_KEY: results.FORMAT_VERSION}
  assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
  assert _files(folder) == [results.CONFIG_FILE]


def test_same_config_reopens(tmp_path):
  ResultsFolder(tmp_path, CONFIG).close()
  before = (tmp_path / results.CONFIG_FILE).read_text()
  # Lists and tuples are the same setting.
  same = dict(CONFIG, activations=list(CONFIG["activations"]))
  ResultsFolder(tmp_path, same).close()
  assert (tmp_path / results.CONFIG_FILE).read_text() == before  # not rewritten


def test_different_config_names_each_field(tmp_path):
  ResultsFolder(tmp_path, CONFIG).close()
  changed = dict(CONFIG, steps=200, activations=("relu",), new_field=1)
  with pytest.raises(ValueError) as error:
    ResultsFolder(tmp_path, changed)
  message = str(error.value)
  assert "steps: 100 != 200" in message
  assert 'activations: ["relu", "necro_relu(negative_slope=[0.05, 0.1])"] != ["relu"]' in message
  assert "new_field: <absent> != 1" in message
  assert "dataset" not in message
  assert "--out" in message and "resume" in message


def test_ignore_is_configurable(tmp_path):
  ResultsFolder(tmp_path, dict(CONFIG, note="first")).close()
  with pytest.raises(ValueError, match="note: \"first\" != \"second\""):
    ResultsFolder(tmp_path, dict(CONFIG, note="second"))
  ResultsFolder(tmp_path, dict(CONFIG, steps=5, note="x"), ignore=("steps", "note")).close()


def test_a_bool_is_not_the_number_one(tmp_path):
  ResultsFolder(tmp_path, {"residual": True, "rate": 1}).close()
  ResultsFolder(tmp_path, {"residual": True, "rate": 1.0}).close()  # the same number
  with pytest.raises(ValueError, match="residual: true != 1"):
    ResultsFolder(tmp_path, {"residual": 1, "rate": 1})


@pytest.mark.parametrize("content, match", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "should hold a JSON object"),
])
def test_corrupt_config_is_a_clear_error(tmp_path, content, match):
  (tmp_path / results.CONFIG_FILE).write_text(content)
  with pytest.raises(ValueError, match=match):
    ResultsFolder(tmp_path, CONFIG)


def test_config_must_be_json_values(tmp_path):
  with pytest.raises(TypeError, match="JSON values"):
    ResultsFolder(tmp_path, {"function": print})


# --- rows --------------------------------------------------------------------


def test_round_trip_is_exact(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  floats = [0.1, 1 / 3, 1e-300, 5e-324, 1e16, -2.5e-7, 123456789.123456789]
  run = _run(
      "necro_relu(negative_slope=0.1)|seed=3|learning_rate=0.01",
      name="necro_relu",
      grid="necro_relu(negative_slope=[0.05, 0.1])",  # commas and brackets
      seed=3,
      negative_slope=0.1,
      diverged=True,
      diverged_step=120,
      test_accuracy=math.nan,
      test_loss=math.inf,
      train_loss=-math.inf,
      zero=-0.0,
      big=2**62,
      note='says "hi", twice',
      numpy_float=np.float32(0.1),
      numpy_int=np.int64(7),
      numpy_bool=np.bool_(True),
      **{f"value/{i}": value for i, value in enumerate(floats)},
  )
  folder.add([run], _history(run["run_id"]))
  (back,) = folder.runs()
  assert list(back) == list(run)  # column order kept
  assert back["run_id"] == run["run_id"] and back["grid"] == run["grid"]
  assert back["seed"] == 3 and type(back["seed"]) is int
  assert back["diverged"] is True and back["diverged_step"] == 120
  assert math.isnan(back["test_accuracy"])
  assert back["test_loss"] == math.inf and back["train_loss"] == -math.inf
  assert back["zero"] == 0.0 and math.copysign(1.0, back["zero"]) == -1.0
  assert back["big"] == 2**62
  assert back["note"] == 'says "hi", twice'
  assert back["numpy_float"] == float(np.float32(0.1)) and back["numpy_int"] == 7
  assert back["numpy_bool"] is True
  for i, value in enumerate(floats):
    assert back[f"value/{i}"] == value  # bit for bit, not approximately


def test_text_columns_stay_text(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("7", activation="1.5", name="True", grid="")], [])
  (back,) = folder.runs()
  texts = (back["run_id"], back["activation"], back["name"], back["grid"])
  assert texts == ("7", "1.5", "True", "")


def test_columns_keep_order_and_missing_values_are_empty(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("relu|seed=0")], [])
  necro = _run("necro|seed=0", negative_slope=0.1, extra="x")
  folder.add([necro], [])
  header = (folder.path / results.RUNS_FILE).read_text().splitlines()[0]
  # A new column goes after its neighbour in the row that brings it.
  assert header.split(",") == list(_run("relu|seed=0")) + [
      "negative_slope", "extra", "history_rows", "layers_rows", "grids_rows", "checksum"]
  relu_back, necro_back = folder.runs()
  assert relu_back["negative_slope"] is None and relu_back["extra"] is None
  assert relu_back["diverged_step"] is None  # None is written as an empty field
  assert necro_back == necro


def test_refuses_a_finished_run_id_and_writes_nothing(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("relu|seed=0")], _history("relu|seed=0"))
  before = {name: (folder.path / name).read_bytes() for name in _files(folder)}
  finished = r"already finished .* never overwritten: \['relu\|seed=0'\]"
  with pytest.raises(ValueError, match=finished):
    folder.add([_run("relu|seed=1"), _run("relu|seed=0", test_loss=0.0)],
               _history("relu|seed=0", loss=9.0))
  with pytest.raises(ValueError, match="more than once"):
    folder.add([_run("relu|seed=2"), _run("relu|seed=2")], [])
  with pytest.raises(ValueError, match="history has rows for runs already finished"):
    folder.add([], _history("relu|seed=0"))
  with pytest.raises(ValueError, match="non-empty string run_id"):
    folder.add([{"activation": "relu"}], [])
  with pytest.raises(TypeError, match="'test_loss' of run 'relu\\|seed=3'"):
    folder.add([_run("relu|seed=3", test_loss=[1.0])], [])
  after = {name: (folder.path / name).read_bytes() for name in _files(folder)}
  assert after == before


def test_resume_reads_finished_run_ids(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  assert folder.finished_run_ids() == set() and folder.runs() == [] and folder.history() == []
  folder.add([_run("relu|seed=0"), _run("relu|seed=1", seed=1)], [])
  folder.close()
  resumed = open_folder(tmp_path, CONFIG)
  assert resumed.finished_run_ids() == {"relu|seed=0", "relu|seed=1"}


def test_history_is_replaced_when_a_run_is_added_after_an_interruption(tmp_path, open_folder, monkeypatch):
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("relu|seed=0")], _history("relu|seed=0"))
  # Interrupt the next add between its two writes: history.csv is written,
  # runs.csv is not, so the run is not finished and will be trained again.
  append = csv_rows.append_rows

  def interrupted(path, columns, rows):
    if path.name == results.RUNS_FILE:
      raise KeyboardInterrupt
    append(path, columns, rows)

  monkeypatch.setattr(csv_rows, "append_rows", interrupted)
  with pytest.raises(KeyboardInterrupt):
    folder.add([_run("relu|seed=1", seed=1)], _history("relu|seed=1", steps=(0, 50), loss=5.0))
  monkeypatch.undo()
  assert folder.finished_run_ids() == {"relu|seed=0"}
  assert len(folder.history()) == 3 + 2
  assert _files(folder) == [results.CONFIG_FILE, results.HISTORY_FILE, results.RUNS_FILE]

  folder.add([_run("relu|seed=1", seed=1)], _history("relu|seed=1", loss=2.0))
  history = folder.history()
  assert [row["run_id"] for row in history] == ["relu|seed=0"] * 3 + ["relu|seed=1"] * 3
  assert [row["train_loss"] for row in history[3:]] == [2.0, 2.0 / 51, 2.0 / 101]
  assert history[:3] == _history("relu|seed=0")  # other runs' rows untouched
  assert folder.finished_run_ids() == {"relu|seed=0", "relu|seed=1"}


def _contents(folder: ResultsFolder) -> dict[str, bytes]:
  return {name: (folder.path / name).read_bytes() for name in _files(folder)}


def test_adds_append_and_never_rewrite_earlier_bytes(tmp_path, open_folder, monkeypatch):
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("relu|seed=0")], _history("relu|seed=0"), _history("relu|seed=0"),
             {"grid": "relu", "seconds": 1.5})
  rewrites = []
  write = atomic.write_text_atomic
  monkeypatch.setattr(atomic, "write_text_atomic",
                      lambda path, text: (rewrites.append(path), write(path, text)))
  for seed in range(1, 6):
    before = _contents(folder)
    run_id = f"relu|seed={seed}"
    folder.add([_run(run_id, seed=seed)], _history(run_id), _history(run_id),
               {"grid": "relu", "seconds": 1.5})
    after = _contents(folder)
    for name, content in before.items():
      if name != results.CONFIG_FILE:
        assert after[name].startswith(content) and len(after[name]) > len(content), name
  assert rewrites == []
  assert [row["seed"] for row in folder.runs()] == list(range(6))
  assert len(folder.history()) == len(folder.layers()) == 6 * 3 and len(folder.grids()) == 6


def test_a_new_column_rewrites_the_file_once(tmp_path, open_folder, monkeypatch):
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("relu|seed=0")], _history("relu|seed=0"))
  rewrites = []
  write = atomic.write_text_atomic
  monkeypatch.setattr(atomic, "write_text_atomic",
                      lambda path, text: (rewrites.append(path.name), write(path, text)))
  folder.add([_run("necro|seed=0", negative_slope=0.1)], _history("necro|seed=0"))
  folder.add([_run("necro|seed=1", seed=1, negative_slope=0.2)], _history("necro|seed=1"))
  assert rewrites == [results.RUNS_FILE]  # the header grew once; history.csv kept its columns
  assert [row["negative_slope"] for row in folder.runs()] == [None, 0.1, 0.2]


def test_adds_read_each_file_once_however_many(tmp_path, open_folder, monkeypatch):
  # Quadratic no more: the open folder remembers each file's columns and runs.
  reads = []
  read = csv_rows.read_table
  monkeypatch.setattr(csv_rows, "read_table", lambda path: (reads.append(path.name), read(path))[1])
  folder = open_folder(tmp_path, CONFIG)
  for seed in range(30):
    run_id = f"relu|seed={seed}"
    folder.add([_run(run_id, seed=seed)], _history(run_id), _history(run_id), {"grid": "relu"})
  files = (results.RUNS_FILE, results.HISTORY_FILE, results.LAYERS_FILE, results.GRIDS_FILE)
  assert sorted(reads) == sorted(files)
  reads.clear()
  folder.close()
  resumed = open_folder(tmp_path, CONFIG)  # a new writer reads them again, once
  for seed in range(30, 40):
    run_id = f"relu|seed={seed}"
    resumed.add([_run(run_id, seed=seed)], _history(run_id), _history(run_id), {"grid": "relu"})
  assert sorted(reads) == sorted(files)
  assert len(resumed.runs()) == 40 and len(resumed.history()) == 40 * 3


def _crash_mid_append(monkeypatch, file_name: str) -> None:
  """The next append to ``file_name`` writes half its bytes, then the process "dies"."""
  append = csv_rows.append_rows

  def crashing(path, columns, rows):
    if path.name != file_name:
      return append(path, columns, rows)
    text = csv_rows.csv_lines(columns, rows, header=False).encode()
    with open(path, "ab") as file:
      file.write(text[: len(text) // 2])
    raise KeyboardInterrupt("simulated crash mid-append")

  monkeypatch.setattr(csv_rows, "append_rows", crashing)


@pytest.mark.parametrize("file_name", [results.HISTORY_FILE, results.RUNS_FILE])
def test_a_row_cut_by_a_crash_mid_append_is_found_and_dropped(tmp_path, open_folder, monkeypatch, file_name):
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("relu|seed=0")], _history("relu|seed=0"))
  before = _contents(folder)
  _crash_mid_append(monkeypatch, file_name)
  with pytest.raises(KeyboardInterrupt):
    folder.add([_run("relu|seed=1", seed=1)], _history("relu|seed=1"))
  monkeypatch.undo()
  folder.close()
  # Earlier rows are intact, byte for byte; the cut row is the last line.
  for name, content in before.items():
    assert (folder.path / name).read_bytes().startswith(content)
  resumed = open_folder(tmp_path, CONFIG)
  (damage,) = resumed.damage()
  assert damage.file == file_name and damage.run_id == "relu|seed=1"
  assert "cut short" in damage.reason
  assert resumed.drop_damaged() == [damage]
  assert resumed.finished_run_ids() == {"relu|seed=0"}
  assert {row["run_id"] for row in resumed.history()} == {"relu|seed=0"}
  resumed.add([_run("relu|seed=1", seed=1)], _history("relu|seed=1"))  # trained again
  assert resumed.damage() == []
  assert resumed.runs() == [_run("relu|seed=0"), _run("relu|seed=1", seed=1)]
  assert resumed.history() == _history("relu|seed=0") + _history("relu|seed=1")


def test_an_append_after_a_cut_row_keeps_both_apart(tmp_path, open_folder):
  # A cut last line without its newline must not swallow the next row.
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("relu|seed=0")], _history("relu|seed=0"))
  path = folder.path / results.HISTORY_FILE
  path.write_bytes(path.read_bytes()[:-12])
  folder.add([_run("relu|seed=1", seed=1)], _history("relu|seed=1"))
  (damage,) = folder.damage()
  assert (damage.file, damage.line, damage.run_id) == (results.HISTORY_FILE, 4, "relu|seed=0")
  folder.drop_damaged()
  assert folder.runs() == [_run("relu|seed=1", seed=1)]
  assert folder.history() == _history("relu|seed=1")


def test_rewrites_are_atomic_and_leave_no_temporary_files(tmp_path, open_folder, monkeypatch):
  folder = open_folder(tmp_path, CONFIG)
  for seed in range(3):
    folder.add([_run(f"relu|seed={seed}", seed=seed)], _history(f"relu|seed={seed}"))
  assert _files(folder) == [results.CONFIG_FILE, results.HISTORY_FILE, results.RUNS_FILE]
  before = (folder.path / results.RUNS_FILE).read_bytes()

  def failing_replace(source, destination):
    raise OSError("disk full")

  monkeypatch.setattr(os, "replace", failing_replace)
  with pytest.raises(OSError, match="disk full"):  # a new column rewrites runs.csv
    folder.add([_run("relu|seed=9", seed=9, negative_slope=0.1)], [])
  monkeypatch.undo()
  assert _files(folder) == [results.CONFIG_FILE, results.HISTORY_FILE, results.RUNS_FILE]
  assert (folder.path / results.RUNS_FILE).read_bytes() == before
  assert len(folder.runs()) == 3
  folder.add([_run("relu|seed=9", seed=9, negative_slope=0.1)], [])  # the folder still works
  assert len(folder.runs()) == 4


def test_write_bytes_atomic_replaces_whole_file(tmp_path):
  path = tmp_path / "plot.png"
  atomic.write_bytes_atomic(path, b"a" * 1000)
  atomic.write_bytes_atomic(path, b"b")
  assert path.read_bytes() == b"b" and os.listdir(tmp_path) == ["plot.png"]
  with pytest.raises(TypeError, match="needs a str"):
    atomic.write_text_atomic(path, b"bytes")


# --- damage, locks ------------------------------------------------------------


def test_every_row_ends_with_a_checksum_that_finds_edits(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("relu|seed=0"), _run("relu|seed=1", seed=1)], _history("relu|seed=0"))
  assert folder.damage() == []
  path = folder.path / results.RUNS_FILE
  path.write_text(path.read_text().replace(",0.5,", ",0.9,", 1))  # an edited accuracy
  (damage,) = folder.damage()
  assert damage == results.Damage("runs.csv", 2, "relu|seed=0",
                                  "its values do not match its checksum (edited or damaged)")
  with pytest.raises(ValueError, match="runs.csv' is damaged: runs.csv line 2"):
    folder.runs()
  assert folder.drop_damaged() == [damage]
  assert [row["run_id"] for row in folder.runs()] == ["relu|seed=1"]
  assert folder.history() == []  # the run's other rows go with it: it will be retrained


def test_a_cut_row_is_found_with_its_line(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  folder.add([_run("relu|seed=0")], _history("relu|seed=0"))
  path = folder.path / results.HISTORY_FILE
  path.write_text(path.read_text()[:-12])  # a full disk cut the last row
  (damage,) = folder.damage()
  assert (damage.file, damage.line, damage.run_id) == ("history.csv", 4, "relu|seed=0")
  assert "cut short" in damage.reason
  folder.drop_damaged()
  assert folder.runs() == [] and folder.history() == []


def test_a_file_without_a_valid_header_is_refused(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  (folder.path / results.RUNS_FILE).write_text("run_id,activation\nx,y\n")
  with pytest.raises(ValueError, match="has no valid header"):
    folder.runs()


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, open_folder):
  open_folder(tmp_path, CONFIG)
  with pytest.raises(results.FolderBusy, match=rf"another process \(pid {os.getpid()}\)"):
    ResultsFolder(tmp_path, CONFIG)
  reader = ResultsFolder(tmp_path, CONFIG, read_only=True)  # readers need no lock
  with pytest.raises(PermissionError, match="read-only"):
    reader.add([_run("relu|seed=0")])


def test_the_lock_is_released_on_close(tmp_path):
  with ResultsFolder(tmp_path, CONFIG):
    pass
  ResultsFolder(tmp_path, CONFIG).close()


@pytest.mark.parametrize("name", [" ", "", "run ", " run"])
def test_a_blank_or_space_padded_folder_name_is_refused(tmp_path, name):
  path = name if not name.strip() else tmp_path / name
  with pytest.raises(ValueError, match="is blank or starts or ends with a space"):
    results.ResultsFolder(path, config={"a": 1})
  assert list(tmp_path.iterdir()) == []



@pytest.mark.parametrize("found", [2, "1", None])
def test_a_folder_of_another_format_is_refused_naming_it(tmp_path, found):
  results.ResultsFolder(tmp_path, CONFIG).close()
  stored = json.loads((tmp_path / results.CONFIG_FILE).read_text())
  (tmp_path / results.CONFIG_FILE).write_text(json.dumps({**stored, results.FORMAT_KEY: found}))
  with pytest.raises(ValueError, match=f"is a results folder of format {found!r}; this version"
                                       " of surrogate-activations reads format 1"):
    results.ResultsFolder(tmp_path, CONFIG)
  with pytest.raises(ValueError, match="reads format 1"):
    results.read_config(tmp_path)


def test_a_folder_from_before_the_format_key_still_resumes(tmp_path):
  results.ResultsFolder(tmp_path, CONFIG).close()
  stored = json.loads((tmp_path / results.CONFIG_FILE).read_text())
  del stored[results.FORMAT_KEY]
  (tmp_path / results.CONFIG_FILE).write_text(json.dumps(stored))
  with results.ResultsFolder(tmp_path, CONFIG) as folder:
    assert folder.finished_run_ids() == set()
  assert results.FORMAT_KEY not in results.read_config(tmp_path)


# --- missing rows, cut headers, lost grids rows (issue 20, items 1 and 6) -----


def _layers(run_id: str, steps=(0, 50, 100), layers: int = 2) -> list[dict]:
  return [{"run_id": run_id, "step": step, "layer": layer, "dead_fraction": 0.25}
          for step in steps for layer in range(1, layers + 1)]


def _three_runs(folder: ResultsFolder) -> list[str]:
  """Two programs: seeds 0 and 1 together, seed 2 alone with no layer rows (as if diverged early)."""
  ids = ["relu|seed=0", "relu|seed=1", "relu|seed=2"]
  folder.add([_run(ids[0]), _run(ids[1], seed=1)], _history(ids[0]) + _history(ids[1]),
             _layers(ids[0]) + _layers(ids[1]), {"grid": "relu", "seconds": 1.5})
  folder.add([_run(ids[2], seed=2)], _history(ids[2], steps=(0,)), [],
             {"grid": "relu", "seconds": 0.5})
  return ids


def _retrain(folder: ResultsFolder, ids: list[str]) -> None:
  """Adds again, as the engine would, the runs of ``ids`` that the folder no longer holds."""
  pending = [run_id for run_id in ids if run_id not in folder.finished_run_ids()]
  together = [run_id for run_id in pending if run_id != "relu|seed=2"]
  if together:
    folder.add([_run(run_id, seed=int(run_id[-1])) for run_id in together],
               [row for run_id in together for row in _history(run_id)],
               [row for run_id in together for row in _layers(run_id)],
               {"grid": "relu", "seconds": 1.5})
  if "relu|seed=2" in pending:
    folder.add([_run("relu|seed=2", seed=2)], _history("relu|seed=2", steps=(0,)), [],
               {"grid": "relu", "seconds": 0.5})


def _by_run(rows: list[dict]) -> list[dict]:
  return sorted(rows, key=lambda row: (row["run_id"], row.get("step", 0), row.get("layer", 0)))


def test_each_run_records_its_rows_and_each_program_its_runs_but_readers_get_what_was_added(
    tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  ids = _three_runs(folder)
  assert folder.runs() == [_run(ids[0]), _run(ids[1], seed=1), _run(ids[2], seed=2)]
  assert folder.grids() == [{"grid": "relu", "seconds": 1.5}, {"grid": "relu", "seconds": 0.5}]
  runs = csv_rows.read_table(folder.path / results.RUNS_FILE).rows
  assert [(row["history_rows"], row["layers_rows"], row["grids_rows"]) for row in runs] == [
      (3, 6, 1), (3, 6, 1), (1, 0, 1)]
  grids = csv_rows.read_table(folder.path / results.GRIDS_FILE).rows
  assert [json.loads(row["run_ids"]) for row in grids] == [ids[:2], ids[2:]]
  assert folder.damage() == []


@pytest.mark.parametrize("how", ["deleted", "emptied", "one_row_deleted"])
@pytest.mark.parametrize("file_name", [results.HISTORY_FILE, results.LAYERS_FILE])
def test_missing_rows_are_found_and_their_runs_dropped_everywhere(tmp_path, open_folder, how,
                                                                 file_name):
  # Regression: rm layers.csv (or one history row) went unnoticed, and the
  # summary read the runs as having blown up before their first evaluation.
  folder = open_folder(tmp_path, CONFIG)
  ids = _three_runs(folder)
  whole = {name: _by_run(_read(folder, name)) for name in (results.RUNS_FILE, file_name)}
  path = folder.path / file_name
  if how == "deleted":
    path.unlink()
  elif how == "emptied":
    path.write_text("")
  else:  # the second row: relu|seed=0's second evaluation
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:]))
  (found,) = folder.damage()
  # Every run with rows in the file is concerned; seed 2 wrote no layer rows.
  concerned = ids[:1] if how == "one_row_deleted" else (
      ids if file_name == results.HISTORY_FILE else ids[:2])
  assert (found.file, found.line, found.run_ids) == (file_name, None, frozenset(concerned))
  rows = 3 if file_name == results.HISTORY_FILE else 6
  expected_reason = {"deleted": "is missing (deleted?)", "emptied": "is empty (emptied?)",
                     "one_row_deleted": f"run 'relu|seed=0' (runs.csv line 2): {rows - 1} of its"
                                        f" {rows} row(s)"}[how]
  assert expected_reason in str(found) and str(found).startswith(f"{file_name}: ")
  assert "will be trained again" in found.notice
  assert folder.drop_damaged() == [found]
  assert folder.finished_run_ids() == set(ids) - set(concerned)
  for name in (results.HISTORY_FILE, results.LAYERS_FILE):  # dropped from every file
    assert not {row["run_id"] for row in _read(folder, name)} & set(concerned)
  assert folder.damage() == []
  _retrain(folder, ids)
  assert folder.damage() == []
  for name, rows in whole.items():
    assert _by_run(_read(folder, name)) == rows, name


def _read(folder: ResultsFolder, name: str) -> list[dict]:
  return {results.RUNS_FILE: folder.runs, results.HISTORY_FILE: folder.history,
          results.LAYERS_FILE: folder.layers, results.GRIDS_FILE: folder.grids}[name]()


def test_a_run_with_more_rows_than_recorded_is_damaged_too(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  _three_runs(folder)
  path = folder.path / results.HISTORY_FILE
  lines = path.read_text().splitlines(keepends=True)
  path.write_text("".join(lines + [lines[1]]))  # a row pasted twice
  (found,) = folder.damage()
  assert found.run_ids == {"relu|seed=0"} and "4 of its 3 row(s)" in found.reason


def _as_legacy(folder: ResultsFolder) -> None:
  """Rewrites ``folder`` as a version before the row counts wrote it: no bookkeeping columns."""
  drop = {"history_rows", "layers_rows", "grids_rows", "run_ids", csv_rows.CHECKSUM}
  for name in (results.RUNS_FILE, results.GRIDS_FILE):
    table = csv_rows.read_table(folder.path / name)
    rows = [{key: value for key, value in csv_rows.as_text(row).items() if key not in drop}
            for row in table.rows]
    csv_rows.write_table(folder.path / name, [c for c in table.header if c not in drop], rows)
  folder._files.clear()


def test_a_folder_without_row_counts_still_resumes_and_is_checked_where_it_can_be(
    tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  ids = ["relu|seed=0", "relu|seed=1"]
  for seed, run_id in enumerate(ids):  # every engine run writes rows at step 0, in both files
    folder.add([_run(run_id, seed=seed)], _history(run_id), _layers(run_id), {"grid": "relu"})
  _as_legacy(folder)
  assert folder.damage() == [] and folder.drop_damaged() == []  # counts unknown: nothing retrained
  assert folder.finished_run_ids() == set(ids)
  path = folder.path / results.HISTORY_FILE  # one row less: unknown without the counts
  lines = path.read_text().splitlines(keepends=True)
  path.write_text("".join(lines[:2] + lines[3:]))
  assert folder.damage() == []
  # Resumed by this version: a new run gets counts and a program, the old ones keep none.
  folder.add([_run("relu|seed=3", seed=3)], _history("relu|seed=3"), _layers("relu|seed=3"),
             {"grid": "relu"})
  assert folder.damage() == [] and len(folder.runs()) == 3 and len(folder.grids()) == 3
  (folder.path / results.LAYERS_FILE).unlink()  # but every run writes rows at step 0
  (found,) = folder.damage()
  assert found.file == results.LAYERS_FILE and found.run_ids == {*ids, "relu|seed=3"}
  folder.drop_damaged()
  assert folder.finished_run_ids() == set() and folder.grids() == []


def test_a_cut_runs_header_sets_the_file_aside_and_every_run_is_trained_again(tmp_path, open_folder):
  # Regression: `truncate -s 50 runs.csv` made the whole folder refused.
  folder = open_folder(tmp_path, CONFIG)
  ids = _three_runs(folder)
  whole = {name: _by_run(_read(folder, name)) for name in (
      results.RUNS_FILE, results.HISTORY_FILE, results.LAYERS_FILE)}
  path = folder.path / results.RUNS_FILE
  cut = path.read_bytes()[:50]
  path.write_bytes(cut)
  folder.close()
  folder = open_folder(tmp_path, CONFIG)
  (found,) = folder.damage()
  assert (found.file, found.line) == (results.RUNS_FILE, 1) and "no valid header" in found.reason
  with pytest.raises(ValueError, match="runs.csv' is damaged: runs.csv line 1: has no valid header"):
    folder.runs()
  with pytest.raises(ValueError, match="has no valid header"):
    folder.add([_run("relu|seed=9", seed=9)])  # never appended to, nor silently replaced
  (dropped,) = folder.drop_damaged()
  assert "set aside as 'runs.csv.damaged'" in str(dropped)
  assert "the runs it held will be trained again" in dropped.notice
  assert (folder.path / "runs.csv.damaged").read_bytes() == cut  # kept, for whoever looks
  assert folder.finished_run_ids() == set() and folder.grids() == []  # no program is left
  _retrain(folder, ids)
  assert folder.damage() == []
  for name, rows in whole.items():
    assert _by_run(_read(folder, name)) == rows, name
  assert len(folder.grids()) == 2


@pytest.mark.parametrize("file_name", [results.HISTORY_FILE, results.LAYERS_FILE, results.GRIDS_FILE])
def test_a_damaged_header_of_another_file_retrains_the_runs_it_concerns(
    tmp_path, open_folder, file_name):
  folder = open_folder(tmp_path, CONFIG)
  ids = _three_runs(folder)
  whole = {name: _by_run(_read(folder, name)) for name in (
      results.RUNS_FILE, results.HISTORY_FILE, results.LAYERS_FILE)}
  path = folder.path / file_name
  path.write_text(path.read_text().replace(",checksum\n", ",checks\n", 1))  # an edited header
  (found,) = folder.damage()
  concerned = ids[:2] if file_name == results.LAYERS_FILE else ids  # seed 2 has no layer rows
  assert (found.file, found.line, found.run_ids) == (file_name, 1, frozenset(concerned))
  (dropped,) = folder.drop_damaged()
  assert f"set aside as '{file_name}.damaged'" in str(dropped)
  assert f"{len(concerned)} run(s) will be trained again" in dropped.notice
  assert folder.finished_run_ids() == set(ids) - set(concerned)
  _retrain(folder, ids)
  assert folder.damage() == []
  for name, rows in whole.items():
    assert _by_run(_read(folder, name)) == rows, name


@pytest.mark.parametrize("how", ["edited", "deleted"])
def test_a_damaged_grids_row_retrains_the_program_it_described(tmp_path, open_folder, how):
  # Regression: a damaged grids.csv row was dropped for good, its program's
  # devices and seconds lost while its runs stayed.
  folder = open_folder(tmp_path, CONFIG)
  ids = _three_runs(folder)
  whole = {name: _by_run(_read(folder, name)) for name in (
      results.RUNS_FILE, results.HISTORY_FILE, results.LAYERS_FILE)}
  grids = sorted(folder.grids(), key=str)
  path = folder.path / results.GRIDS_FILE
  lines = path.read_text().splitlines(keepends=True)
  lines[1] = lines[1].replace(",1.5,", ",9.5,") if how == "edited" else ""
  path.write_text("".join(lines))
  found = folder.damage()
  lost = found[-1]  # after the damaged row itself, if any: the runs it described
  assert (lost.file, lost.line, lost.run_ids) == (results.GRIDS_FILE, None, frozenset(ids[:2]))
  assert "no intact row for the program that trained 2 run(s)" in lost.reason
  if how == "edited":
    assert [(item.file, item.line) for item in found] == [(results.GRIDS_FILE, 2), lost[:2]]
  assert folder.drop_damaged() == found
  assert folder.finished_run_ids() == {ids[2]} and len(folder.grids()) == 1
  _retrain(folder, ids)
  assert folder.damage() == []
  for name, rows in whole.items():
    assert _by_run(_read(folder, name)) == rows, name
  assert sorted(folder.grids(), key=str) == grids  # the program's row is back


def test_a_program_added_again_after_an_interruption_replaces_its_grids_row(
    tmp_path, open_folder, monkeypatch):
  folder = open_folder(tmp_path, CONFIG)
  write = ResultsFolder._write_rows

  def interrupted(self, file_name, rows, replacing=()):
    if file_name == results.RUNS_FILE:  # after history, layers and grids
      raise KeyboardInterrupt
    write(self, file_name, rows, replacing)

  monkeypatch.setattr(ResultsFolder, "_write_rows", interrupted)
  with pytest.raises(KeyboardInterrupt):
    _three_runs(folder)
  monkeypatch.undo()
  assert folder.finished_run_ids() == set() and len(folder.grids()) == 1
  ids = _three_runs(folder)
  assert len(folder.grids()) == 2 and folder.damage() == []
  assert folder.finished_run_ids() == set(ids)


def test_each_damaged_file_is_named_even_when_their_runs_overlap(tmp_path, open_folder):
  folder = open_folder(tmp_path, CONFIG)
  ids = _three_runs(folder)
  os.truncate(folder.path / results.GRIDS_FILE, 10)  # every run loses its program's row
  (folder.path / results.LAYERS_FILE).unlink()
  found = folder.damage()
  assert [(item.file, item.line, item.run_ids) for item in found] == [
      (results.GRIDS_FILE, 1, frozenset(ids)), (results.LAYERS_FILE, None, frozenset(ids[:2]))]
  assert [item.notice for item in folder.drop_damaged()] == [
      f"grids.csv line 1: {found[0].reason}; set aside as 'grids.csv.damaged'; 3 run(s) will be"
      " trained again, their rows dropped from every file.",
      "layers.csv: is missing (deleted?), though runs.csv records rows in it for 2 run(s); 2"
      " run(s) will be trained again, their rows dropped from every file."]
  assert folder.finished_run_ids() == set() and folder.damage() == []
