"""The ticket's exports: plain torch.nn modules of every architecture, the structurally smaller net, and
every exported file loaded back giving the engine's own predictions on the test split."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lth_core import ExperimentConfig
from lth_core.analysis.exports import (EXPORT_FORMATS, ExportFormat, export_ticket, plain_module, read_bitmask, read_csr,
                                      write_bitmask, write_csr)
from lth_core.engine.models import ARCHITECTURES, build_network
from lth_core.engine.retrain import engine_logits, retrain
from lth_core.runs.store import RunStore
from lth_core.engine.structured import reduce
from lth_core.engine.torch_modules import build_plain, missing_builders, plain_from_engine

from conftest import ROOT

# tiny real runs: an mlp and a conv net on scikit-learn's 8×8 digits, each with a control trained beside
# the ticket (so retraining must reproduce a stacked round exactly)
TINY_RUNS = {
    "mlp": dict(dataset="digits", arch="mlp", hidden=(32, 16), rounds=2, iterations=60, batch_size=32,
                controls=("reinit",), seed=1),
    "conv": dict(dataset="digits", arch="conv-2", rounds=2, iterations=40, batch_size=32, controls=("random",), seed=2),
}


@pytest.fixture(scope="session")
def stored_runs(tmp_path_factory, dataset_cache):
    """A store holding the finished TINY_RUNS, trained in this process as `run --store` does."""
    from lth_core.runs.recorder import claim, create_run
    from lth_core.runs.worker import execute

    home = tmp_path_factory.mktemp("lth-deploy-store")
    os.symlink(dataset_cache, home / "cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTH_HOME", str(home))
        store = RunStore(home / "runs.sqlite")
        ids = {}
        for key, settings in TINY_RUNS.items():
            ids[key] = create_run(store, ExperimentConfig(**settings), f"tiny {key}")
            assert execute(store, ids[key], claim(store, ids[key], pid=os.getpid())) == "finished"
        yield {"home": home, "store": store, **ids}
        store.close()


def _random_model(arch: str, input_shape, classes: int = 10, density: float = 0.4, seed: int = 0):
    net = build_network(arch, input_shape, classes, "image")
    gen = torch.Generator().manual_seed(seed)
    params = net.init_params(gen)
    masks = {s.name: torch.rand(s.shape, generator=gen) < density for s in net.prunable}
    for name, mask in masks.items():
        params[name] = params[name] * mask
    for name in params:
        if name.endswith(".bias"):
            params[name] = torch.randn(params[name].shape, generator=gen) * 0.1
    buffers = {n: (torch.rand(shape, generator=gen) + 0.5 if n.endswith("var") else torch.randn(shape, generator=gen) * 0.1)
               for n, shape, _ in net.buffer_specs}
    return net, params, masks, buffers


def _engine(net, params, buffers, x):
    with torch.no_grad():
        return net.forward({n: p.unsqueeze(0) for n, p in params.items()}, {n: b.unsqueeze(0) for n, b in buffers.items()},
                           x.unsqueeze(0), False)[0]


def test_every_architecture_has_a_plain_module():
    assert missing_builders() == []


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (2, 16)], ids=["image", "sequence"])
def test_plain_module_computes_the_engines_function(arch, input_shape):
    net, params, masks, buffers = _random_model(arch, input_shape)
    x = torch.randn(7, *input_shape)
    module = plain_from_engine(net, params, buffers, input_shape)
    with torch.no_grad():
        torch.testing.assert_close(module(x), _engine(net, params, buffers, x), rtol=1e-5, atol=1e-5)


def _with_dead_units(arch: str):
    """A sparse model with every kind of dead unit: no incoming weight (bias > 0 and < 0), no outgoing
    weight, and (mlp) input features nothing reads."""
    net, params, masks, buffers = _random_model(arch, (1, 8, 8), density=0.5, seed=3)
    first, second = ("fc1", "fc2") if arch == "mlp" else ("conv1", "conv2")

    def cut(name: str, index, axis: int) -> None:
        sl = [slice(None)] * masks[f"{name}.weight"].dim()
        sl[axis] = index
        masks[f"{name}.weight"][tuple(sl)] = False
        params[f"{name}.weight"][tuple(sl)] = 0.0

    cut(first, 0, 0)
    params[f"{first}.bias"][0] = 0.7        # constant unit, relu(b) > 0
    cut(first, 1, 0)
    params[f"{first}.bias"][1] = -0.3       # constant unit, relu(b) = 0
    cut(second, 2, 1)                       # unit 2 of the first layer: nothing reads it
    last_hidden = "fc1" if arch == "mlp" else "conv2"  # before a fully connected layer: a constant is folded
    cut(last_hidden if arch != "mlp" else "fc2", 3, 0)
    params[f"{last_hidden if arch != 'mlp' else 'fc2'}.bias"][3] = 0.5
    if arch == "mlp":
        cut("fc1", slice(0, 9), 1)          # the first 9 pixels: no weight reads them
    return net, params, masks, buffers


@pytest.mark.parametrize("arch", ["mlp", "conv-2"])
def test_structured_net_is_smaller_and_computes_the_same_function(arch):
    net, params, masks, buffers = _with_dead_units(arch)
    small, units = reduce(arch, params, masks)
    removed = {u.layer: u.removed for u in units}
    first = "fc1" if arch == "mlp" else "conv1"
    if arch == "mlp":
        assert removed["input"] >= 9 and removed["fc1"] >= 3 and removed["fc2"] >= 1
    else:  # before a convolution a constant channel with relu(b) > 0 must stay (zero padding)
        assert removed["conv1"] >= 2 and removed["conv2"] >= 1
    assert removed["output"] == 0
    module = build_plain(arch, {k: tuple(v.shape) for k, v in small.items()}, (1, 8, 8))
    module.load_state_dict(small)
    assert sum(p.numel() for p in module.parameters()) < sum(p.numel() for p in params.values())
    x = torch.randn(50, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), _engine(net, params, buffers, x), rtol=1e-5, atol=1e-5)
    assert first in removed


def test_residual_nets_are_not_reduced():
    net, params, masks, _ = _random_model("resnet-8", (1, 8, 8))
    assert reduce("resnet-8", params, masks) is None


@pytest.mark.parametrize("int8", [False, True])
def test_bitmask_and_csr_files_hold_the_weights(tmp_path, int8):
    net, params, masks, _ = _random_model("conv-2", (1, 8, 8))
    for write, read in ((write_bitmask, read_bitmask), (write_csr, read_csr)):
        back = read(write(params, masks, tmp_path / f"{write.__name__}.npz", int8=int8))
        assert set(back) == set(params)
        for name, value in params.items():
            if int8 and name in masks:  # within half a step of the row's scale, zeros exactly zero
                step = value.reshape(value.shape[0], -1).abs().max(1).values / 127
                err = (back[name] - value).reshape(value.shape[0], -1).abs()
                assert (err <= step[:, None] / 2 + 1e-7).all()
                assert (back[name][~masks[name]] == 0).all()
            else:
                assert torch.equal(back[name], value)


def _logits(value) -> torch.Tensor:
    return value.detach() if torch.is_tensor(value) else torch.from_numpy(np.asarray(value))


def _assert_within_tolerance(fmt: ExportFormat, logits: torch.Tensor, reference: torch.Tensor, y: torch.Tensor) -> None:
    """A format's logits against the engine's on the test split: the share of equal predictions at least its
    `agreement` (so the accuracy moves at most 1 - agreement) and, unless lossy (tolerance None), the logits close."""
    agree = float((logits.argmax(1) == reference.argmax(1)).float().mean())
    assert agree >= fmt.agreement, (fmt.name, agree)
    accuracy, engine = (float((out.argmax(1) == y).float().mean()) for out in (logits, reference))
    assert abs(accuracy - engine) <= 1 - fmt.agreement + 1e-12, (fmt.name, accuracy, engine)
    if fmt.tolerance is not None:
        torch.testing.assert_close(logits, reference, rtol=fmt.tolerance, atol=fmt.tolerance, msg=fmt.name)


def _run_readme_lines(fmt: ExportFormat, model, x: torch.Tensor, prefix: str = "") -> torch.Tensor:
    """A format's lines of README.txt, run as a user would, in the folder that holds the export's files."""
    scope = {"x": x.numpy()}
    exec(fmt.lines(model.net.arch, prefix), scope)  # noqa: S102 - our own text
    return _logits(scope["logits"])


@pytest.mark.parametrize("key", list(TINY_RUNS))
def test_every_export_loads_back_with_the_engines_predictions(stored_runs, tmp_path, key, monkeypatch):
    """Every format of the registry, loaded back by its own lines of README.txt, predicts as the engine does."""
    monkeypatch.setenv("LTH_HOME", str(stored_runs["home"]))
    store, run_id = stored_runs["store"], stored_runs[key]
    model = retrain(store, run_id, 2)["ticket"]
    assert model.matches_stored, model.source()  # retraining gave the stored round's network
    assert 0 < model.weights_remaining < 1
    from lth_core.engine.lottery import make_plan

    data = make_plan(store.get_run(run_id).config).data
    x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    reference = engine_logits(model, x)
    assert float((reference.argmax(1) == y).float().mean()) == pytest.approx(model.stored_test_accuracy, abs=1e-9)
    folder = tmp_path / "ticket"
    files = {f.name for f in export_ticket(model, folder)}
    assert files == {"ticket.json", "README.txt", *(f.file for f in EXPORT_FORMATS.values())}
    assert {"ticket_pruned.pt", "ticket_dense.pt", "ticket.onnx", "ticket_bitmask.npz"} <= files  # issue 11's four

    readme = (folder / "README.txt").read_text()
    monkeypatch.chdir(folder)  # README.txt's lines run in the folder that holds the files
    for fmt in EXPORT_FORMATS.values():
        assert fmt.readme(model.net.arch) in readme
        _assert_within_tolerance(fmt, _run_readme_lines(fmt, model, x), reference, y)

    state = torch.load(folder / "ticket_pruned.pt")  # torch.nn.utils.prune's format, with the run's mask
    assert any(k.endswith("weight_orig") for k in state) and any(k.endswith("weight_mask") for k in state)
    assert all(not k.endswith(".weight") for k in state if k.rsplit(".", 1)[0] + ".weight_mask" in state)
    pruned = plain_module(folder, pruned=True)
    pruned.load_state_dict(state)
    layer = "fc1" if key == "mlp" else "conv1"
    torch.testing.assert_close(getattr(pruned, layer).weight_mask.bool(), model.masks[f"{layer}.weight"])
    assert "ticket.json" in readme
    meta = json.loads((folder / "ticket.json").read_text())
    assert meta["round"] == 2 and meta["arch"] == model.net.arch


@pytest.mark.parametrize("key", list(TINY_RUNS))
def test_int8_onnx_and_csr_exports_load_back_as_readme_says(stored_runs, tmp_path, key, monkeypatch):
    """The two files the deploy bench measured but nobody could download: ONNX Runtime's dynamic int8 model (the
    bench's own quantize_onnx) within its stated agreement on the run's test split, and the weights as torch
    sparse CSR tensors that give back the dense ticket exactly."""
    import onnx

    monkeypatch.setenv("LTH_HOME", str(stored_runs["home"]))
    store, run_id = stored_runs["store"], stored_runs[key]
    model = retrain(store, run_id, 2)["ticket"]
    from lth_core.engine.lottery import make_plan

    data = make_plan(store.get_run(run_id).config).data
    x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    reference = engine_logits(model, x)
    folder = tmp_path / "ticket"
    files = {f.name for f in export_ticket(model, folder, formats=["onnx", "onnx-int8", "csr", "dense"])}
    assert {"ticket_int8.onnx", "ticket_csr.pt"} <= files
    readme = (folder / "README.txt").read_text()
    int8, csr = EXPORT_FORMATS["onnx-int8"], EXPORT_FORMATS["csr"]
    assert int8.readme(model.net.arch) in readme and csr.readme(model.net.arch) in readme
    assert "import onnxruntime" in int8.lines(model.net.arch) and ".to_dense()" in csr.lines(model.net.arch)
    monkeypatch.chdir(folder)

    # int8: weights stored as int8 by dynamic quantisation, a file far smaller than the fp32 ONNX; its predictions
    # within the stated agreement, its logits not equal (it is lossy, and the check must not need bit equality)
    graph = onnx.load("ticket_int8.onnx").graph
    assert any(i.data_type == onnx.TensorProto.INT8 for i in graph.initializer)
    assert any(n.op_type == "DynamicQuantizeLinear" for n in graph.node)
    assert (folder / "ticket_int8.onnx").stat().st_size < (folder / "ticket.onnx").stat().st_size
    logits = _run_readme_lines(int8, model, x)
    assert int8.tolerance is None and 0.9 <= int8.agreement < 1
    _assert_within_tolerance(int8, logits, reference, y)
    assert not torch.equal(logits, reference)

    # csr: every pruned weight a sparse CSR tensor holding only the surviving weights, to_dense() the dense weights
    # exactly, and the README's lines give the dense ticket's logits bit for bit
    state, dense = torch.load("ticket_csr.pt"), torch.load("ticket_dense.pt")
    assert set(state) == set(dense)
    for name, value in state.items():
        if name in model.masks:
            assert value.layout == torch.sparse_csr and value.col_indices().dtype == torch.int32, name
            assert value.values().numel() == int(model.masks[name].sum()), name  # trained survivors are non-zero
        assert torch.equal(value.to_dense().reshape(dense[name].shape), dense[name]), name
    from lth_core.analysis.exports import plain_module

    dense_model = plain_module(folder, pruned=False)
    dense_model.load_state_dict(dense)
    with torch.no_grad():
        assert torch.equal(_run_readme_lines(csr, model, x), dense_model(x))
    _assert_within_tolerance(csr, _run_readme_lines(csr, model, x), reference, y)


def test_a_new_format_is_one_entry(stored_runs, tmp_path, monkeypatch):
    """A format added to the registry is written, explained in README.txt, and chosen by `export --formats`."""
    from lth_core.cli import _ticket_formats

    def write(parts, path):
        np.savez(path, **{k: v.numpy() for k, v in parts.module.state_dict().items()})

    entry = ExportFormat("npz", "ticket_state.npz", "every parameter as a numpy array", write, load="""
import numpy as np, torch; from lth_core.analysis.exports import plain_module
model = plain_module("{meta}", pruned=False); z = np.load("{file}")
model.load_state_dict({{k: torch.from_numpy(z[k]) for k in z.files}}); logits = model(torch.from_numpy(x))
""")
    monkeypatch.setitem(EXPORT_FORMATS, "npz", entry)
    monkeypatch.setenv("LTH_HOME", str(stored_runs["home"]))
    model = retrain(stored_runs["store"], stored_runs["mlp"], 1)["ticket"]
    folder = tmp_path / "ticket"
    files = export_ticket(model, folder, formats=_ticket_formats("npz"))
    assert sorted(f.name for f in files) == ["README.txt", "ticket.json", "ticket_state.npz"]
    assert entry.readme(model.net.arch) in (folder / "README.txt").read_text()
    monkeypatch.chdir(folder)
    x = torch.randn(20, *model.input_shape)
    torch.testing.assert_close(_run_readme_lines(entry, model, x), engine_logits(model, x), rtol=1e-5, atol=1e-5)


def test_the_readme_and_the_cli_name_every_format():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| file | contents |", readme.index("`export --ticket` writes")):]
    table = table[:table.index("\n\n")]
    help_text = subprocess.run([sys.executable, "-m", "lth_core", "export", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=120).stdout
    for fmt in EXPORT_FORMATS.values():
        assert f"| `{fmt.file}` |" in table, fmt.file
        assert fmt.name in help_text and fmt.file in " ".join(help_text.split()), fmt.name


def _cli(*args: str, home) -> subprocess.CompletedProcess:
    env = dict(os.environ, LTH_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "lth_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def test_cli_export_ticket_adds_a_ticket_folder_and_keeps_the_other_files(stored_runs, tmp_path):
    run_id, home = stored_runs["mlp"], stored_runs["home"]
    plain, with_ticket = tmp_path / "plain", tmp_path / "with"
    assert _cli("export", run_id, "--out", str(plain), home=home).returncode == 0
    proc = _cli("export", run_id, "--out", str(with_ticket), "--ticket", "--round", "1", home=home)
    assert proc.returncode == 0, proc.stderr
    assert "ticket/" in proc.stdout and "the same as the run" in proc.stdout
    for f in plain.rglob("*"):
        if f.is_file():
            assert (with_ticket / f.relative_to(plain)).read_bytes() == f.read_bytes(), f
    assert json.loads((with_ticket / "ticket" / "ticket.json").read_text())["round"] == 1
    for name in ("ticket_pruned.pt", "ticket_dense.pt", "ticket.onnx", "ticket_bitmask.npz", "README.txt"):
        assert (with_ticket / "ticket" / name).stat().st_size > 0
    chosen = tmp_path / "chosen"
    proc = _cli("export", run_id, "--out", str(chosen), "--ticket", "--formats", "bitmask, dense,onnx-int8,csr",
                home=home)
    assert proc.returncode == 0, proc.stderr
    assert sorted(f.name for f in (chosen / "ticket").iterdir()) == ["README.txt", "ticket.json", "ticket_bitmask.npz",
                                                                     "ticket_csr.pt", "ticket_dense.pt",
                                                                     "ticket_int8.onnx"]
    assert "ticket.onnx" not in (chosen / "ticket" / "README.txt").read_text()


@pytest.mark.parametrize("args, field", [(["--round", "1"], "round"), (["--ticket", "--round", "7"], "round"),
                                         (["--ticket", "--trial", "3"], "trial"), (["--formats", "onnx"], "formats"),
                                         (["--ticket", "--formats", "onnx,tflite"], "formats"),
                                         (["--ticket", "--formats", ","], "formats")])
def test_cli_export_ticket_bad_input(stored_runs, tmp_path, args, field):
    out = tmp_path / "out"
    proc = _cli("export", stored_runs["mlp"], "--out", str(out), *args, home=stored_runs["home"])
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {field}:") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists() or not any(out.iterdir())  # refused before anything was written


@pytest.mark.parametrize("reset", ["rewind:5", "none", "lr-rewind"])
def test_retraining_rebuilds_rounds_of_every_reset(tmp_path, reset):
    """rewind:K starts from the stored rewind point; none fine-tunes, so every round up to R is retrained."""
    from lth_core.runs.recorder import claim, create_run
    from lth_core.runs.worker import execute

    store = RunStore(tmp_path / "runs.sqlite")
    run_id = create_run(store, ExperimentConfig(dataset="digits", arch="mlp", hidden=(24,), rounds=2, iterations=30,
                                                batch_size=32, controls=("random",), reset=reset, seed=4,
                                                lr_schedule="step" if reset != "rewind:5" else "constant"))
    assert execute(store, run_id, claim(store, run_id, pid=os.getpid())) == "finished"
    models = retrain(store, run_id, 2, variants=("ticket", "random"))
    for model in models.values():
        assert model.matches_stored, model.source()
    assert models["ticket"].masks["fc1.weight"].sum() < models["ticket"].masks["fc1.weight"].numel()


def test_readme_names_the_files_as_downloaded_and_states_the_normalisation(stored_runs, tmp_path, monkeypatch):
    """Issue 11, defect 3: README.txt's lines run on the files as the app's downloads name them (and as the export
    folder names them), with no renaming; and it states the engine's normalisation with its numbers, which turn
    the dataset's raw values into the engine's inputs."""
    import re
    import textwrap

    from lth_core.analysis.exports import download_name, ticket_readme
    from lth_core.engine.lottery import make_plan

    monkeypatch.setenv("LTH_HOME", str(stored_runs["home"]))
    store, run_id = stored_runs["store"], stored_runs["mlp"]
    model = retrain(store, run_id, 2)["ticket"]
    folder = tmp_path / "ticket"
    files = export_ticket(model, folder)
    meta = json.loads((folder / "ticket.json").read_text())
    downloads = tmp_path / "Downloads"  # every file saved under the name the app's download button gives it
    downloads.mkdir()
    for f in files:
        (downloads / download_name(run_id, 2, 0, f.name)).write_bytes(f.read_bytes())
    prefix = download_name(run_id, 2, 0, "")
    readme = ticket_readme(meta, list(EXPORT_FORMATS.values()), prefix)
    # every file name the README quotes is a file that is there, and no ticket/ folder is expected
    quoted = set(re.findall(r'"([^"\s]+\.(?:json|pt|onnx|npz))"', readme))
    assert quoted and "ticket/" not in readme
    assert quoted <= {p.name for p in downloads.iterdir()}, quoted
    assert quoted == {prefix + "ticket.json", *(prefix + f.file for f in EXPORT_FORMATS.values())}
    data = make_plan(store.get_run(run_id).config).data
    x, y = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    reference = engine_logits(model, x)
    monkeypatch.chdir(downloads)
    for fmt in EXPORT_FORMATS.values():
        assert fmt.readme(model.net.arch, prefix) in readme
        _assert_within_tolerance(fmt, _run_readme_lines(fmt, model, x, prefix), reference, y)
    # the folder's own README.txt names the files as the folder holds them
    own = (folder / "README.txt").read_text()
    assert set(re.findall(r'"([^"\s]+\.(?:json|pt|onnx|npz))"', own)) <= {f.name for f in files}
    # the normalisation, stated with numbers (digits: raw 0-16, divided by 16, standardised per channel)
    norm = meta["normalisation"]
    assert norm["scale"] == 16 and len(norm["mean"]) == len(norm["std"]) == 1
    assert "divide the raw values by 16" in readme and f"{norm['mean'][0]:.6g}" in readme and f"{norm['std'][0]:.6g}" in readme
    # applied as README.txt says to the raw values, it gives the engine's inputs: raw = x undone is whole 0-16
    raw = np.rint((data.x_test * np.float32(norm["std"][0]) + np.float32(norm["mean"][0])) * 16)
    assert raw.min() >= 0 and raw.max() <= 16
    scope = {"raw": raw}
    lines = readme.split("In Python, from `raw`", 1)[1].split("\n", 1)[1].split("\n\n")[0]
    exec(textwrap.dedent(lines), scope)  # noqa: S102 - our own text
    np.testing.assert_allclose(scope["x"], data.x_test, atol=1e-5)
