"""cf-gd and cf-regularized: hand-written optimisers match torch.optim, both learn toward the noise floor,
mean-rating initialisation, best-epoch weights, the unseen-user fallback, exact resume, device errors."""
from pathlib import Path

import numpy as np
import pytest
import torch

from components.data import load_ratings, prepare_dataset
from components.errors import DlxError
from components.evaluate import evaluate_run
from components.files import read_json
from components.params import override
from components.topics.optimizers import HandAdagrad, HandSGD
from components.topics import torch_loop
from components.topics.ratings import cf_gd, cf_regularized, factors
from components.topics.torch_loop import MODEL_FILE
from conftest import Interrupted

TOPICS = {"cf-gd": cf_gd, "cf-regularized": cf_regularized}


@pytest.fixture(scope="module")
def ratings(tmp_path_factory) -> Path:
    """200 users x 150 items at 40% density: enough ratings per user for a rank-5 model to get near the floor."""
    path = tmp_path_factory.mktemp("ratings") / "dataset"
    prepare_dataset("synthetic-ratings", path, seed=0, options={"users": "200", "items": "150", "density": "0.4"})
    return path


def _params(module, **changes):
    """The topic's synthetic-ratings preset with ``changes`` on top."""
    return module.TOPIC.params_for("synthetic-ratings", [f"{k}={v}" for k, v in changes.items()])


def _model(model_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(model_dir / MODEL_FILE, weights_only=True)


@pytest.mark.parametrize("hand, library", [
    (lambda p: HandSGD(p, lr=0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    (lambda p: HandAdagrad(p, lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
], ids=["momentum-vs-SGD", "adagrad-vs-Adagrad"])
def test_hand_written_optimizers_match_torch_optim(hand, library):
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(30, 20, generator=generator)
    init = [0.3 * torch.randn(30, 4, generator=generator), 0.3 * torch.randn(20, 4, generator=generator)]
    mask = torch.rand(30, 20, generator=generator) < 0.3
    finals = []
    for make in (hand, library):
        users, items = (t.clone().requires_grad_() for t in init)
        optimizer = make([users, items])
        for _ in range(40):
            optimizer.zero_grad()
            ((users @ items.T - target)[mask] ** 2).mean().backward()
            optimizer.step()
        finals.append((users.detach(), items.detach()))
    assert not torch.equal(finals[0][0], init[0])
    for mine, theirs in zip(*finals):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", TOPICS)
def test_topic_learns_toward_the_noise_floor(name, ratings, tmp_path, capsys):
    module = TOPICS[name]
    summary = module.TOPIC.train(ratings, tmp_path / "model", _params(module), 0)
    assert "val rmse" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "history.json", "model.pt", "params.json", "train.json"]
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert {"train_seconds", "samples_per_second", "seed"} <= set(read_json(tmp_path / "model" / "train.json"))
    assert {"rmse", "val_rmse", "val_mae"} == set(read_json(tmp_path / "model" / "history.json"))

    metrics = evaluate_run(module.TOPIC, ratings, tmp_path / "model", tmp_path / "eval")
    test, floor = metrics["test"]["rmse"], metrics["noise_floor"]["rmse"]
    bias = min(values["rmse"] for values in metrics["baseline"].values())
    assert test < 0.5 * bias  # measured: cf-gd 0.34, cf-regularized 0.34 against a bias baseline of 0.80
    assert test <= 1.35 * floor  # the floor is 0.28; 6,000 ratings of 350 users/items do not pin it down closer


def test_mean_rating_initialisation(ratings):
    splits, meta = factors.load_splits(ratings, (0.0, 5.5), "cpu")
    train = splits["train"]
    tensors = factors.init_tensors(meta, train, 50, 0.01, (0.0, 5.5), True, 0, "cpu")
    with torch.no_grad():
        initial = factors.predict(tensors, train.users, train.items, (0.0, 5.5))
    assert abs(float(initial.mean()) - float(train.ratings.mean())) < 0.01


@pytest.mark.parametrize("implicit", [False, True], ids=["plain", "implicit"])
def test_best_epoch_weights_are_kept(implicit, ratings, tmp_path, capsys):
    """With implicit feedback the saved user_factors hold it folded in: the saved model scores exactly
    what training measured."""
    params = _params(cf_regularized, learning_rate=0.1, weight_decay=0, epochs=30, patience=3, refit=False,
                     implicit=implicit)
    summary = cf_regularized.TOPIC.train(ratings, tmp_path / "model", params, 0)
    assert "stopping early" in capsys.readouterr().out
    history = read_json(tmp_path / "model" / "history.json")
    assert len(history["val_rmse"]) == summary["best_epoch"] + 3 < 30
    splits, _ = factors.load_splits(ratings, params.y_range, "cpu")
    saved = factors.split_scores(_model(tmp_path / "model"), splits["val"], params.y_range)["rmse"]
    assert saved == pytest.approx(min(history["val_rmse"]), abs=1e-6)
    assert history["val_rmse"][-1] > saved
    assert "implicit" not in _model(tmp_path / "model")


def test_implicit_feedback_sums_the_rated_items_vectors(ratings):
    splits, meta = factors.load_splits(ratings, (0.0, 5.5), "cpu")
    train = splits["train"]
    tensors, feedback = cf_regularized.initial_tensors(meta, train, _params(cf_regularized, implicit=True), 0, "cpu")
    table = torch.randn_like(tensors["implicit"])
    users, items = train.users.numpy(), train.items.numpy()
    rows = np.array([5, 0, 17, 5, 300])
    got = feedback.of_ratings(rows, table)
    for row, term in zip(rows, got):
        rated = items[users == users[row]]
        torch.testing.assert_close(term, table[rated].sum(0) / len(rated) ** 0.5)
    folded = feedback.folded({**tensors, "implicit": table})
    assert "implicit" not in folded
    torch.testing.assert_close(folded["user_factors"][users[rows]], tensors["user_factors"][users[rows]] + got)
    torch.testing.assert_close(folded["item_factors"], tensors["item_factors"])


def test_refit_learns_the_chosen_epochs_from_training_and_validation_ratings(ratings, tmp_path, capsys):
    params = _params(cf_regularized, learning_rate=0.1, weight_decay=0, epochs=30, patience=3)
    summary = cf_regularized.TOPIC.train(ratings, tmp_path / "model", params, 0)
    splits, _ = factors.load_splits(ratings, params.y_range, "cpu")
    known = int(((splits["val"].users >= 0) & (splits["val"].items >= 0)).sum())
    assert summary["refit_ratings"] == len(splits["train"]) + known
    assert f"refitting on {summary['refit_ratings']} training and validation ratings for {summary['best_epoch']} epochs" \
        in capsys.readouterr().out
    refit_val = factors.split_scores(_model(tmp_path / "model"), splits["val"], params.y_range)["rmse"]
    assert refit_val < summary["val_rmse"]  # it has now learned from the validation ratings


def test_unseen_users_and_items_fall_back_to_the_biases(ratings, tmp_path):
    cf_regularized.TOPIC.train(ratings, tmp_path / "model", _params(cf_regularized, epochs=3), 0)
    tensors, (lo, hi) = _model(tmp_path / "model"), (0.0, 5.5)
    users, items = torch.tensor([-1, 3, -1]), torch.tensor([7, -1, -1])
    got = factors.predict(tensors, users, items, (lo, hi))
    g = tensors["global_bias"]
    want = lo + (hi - lo) * torch.sigmoid(torch.stack([
        g + tensors["item_bias"][7], g + tensors["user_bias"][3], g]))
    torch.testing.assert_close(got, want)

    tables, _ = load_ratings(ratings)
    with_unseen = tables["test"].assign(user=-1)
    learned_rows = factors.predict(tensors, torch.tensor(with_unseen["user"].to_numpy(np.int64)),
                                 torch.tensor(with_unseen["item"].to_numpy(np.int64)), (lo, hi))
    assert torch.isfinite(learned_rows).all()


@pytest.mark.parametrize("name, changes", [
    ("cf-gd", {"epochs": 6, "optimizer": "momentum", "learning_rate": 1}),
    ("cf-gd", {"epochs": 6}),
    ("cf-regularized", {"epochs": 6, "optimizer": "adagrad", "learning_rate": 0.1}),
    ("cf-regularized", {"epochs": 8, "learning_rate": 0.1, "weight_decay": 0, "patience": 2, "schedule": "constant"}),
    ("cf-regularized", {"epochs": 6, "schedule": "one-cycle", "decay": "decoupled", "weight_decay": 0.5,
                        "uniform_weight_decay": 2}),
    ("cf-regularized", {"epochs": 6, "implicit": "true", "implicit_weight_decay": 4}),
])
def test_resumed_run_reproduces_the_uninterrupted_one(name, changes, ratings, tmp_path, epochs_run, capsys):
    module, counter = TOPICS[name], epochs_run
    params = _params(module, **changes)
    module.TOPIC.train(ratings, tmp_path / "straight", params, 0)
    straight_epochs = counter.count
    checkpoints = tmp_path / "checkpoints"
    counter.count, counter.stop_after = 0, 3
    with pytest.raises(Interrupted):
        module.TOPIC.train(ratings, tmp_path / "resumed", params, 0, checkpoints)
    assert not (tmp_path / "resumed").exists()

    counter.count, counter.stop_after = 0, None
    module.TOPIC.train(ratings, tmp_path / "resumed", params, 0, checkpoints)
    assert "resuming from the checkpoint after epoch 3" in capsys.readouterr().out
    assert counter.count == straight_epochs - 3
    straight, resumed = _model(tmp_path / "straight"), _model(tmp_path / "resumed")
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert read_json(tmp_path / "resumed" / "history.json") == read_json(tmp_path / "straight" / "history.json")


def test_step_size_schedules():
    def rates(schedule, total=100):
        params = _params(cf_regularized, schedule=schedule, learning_rate=0.01)
        return [cf_regularized.step_size(params, step / total) for step in range(total + 1)]

    assert set(rates("constant")) == {0.01}
    cosine = rates("cosine")
    assert cosine[0] == 0.01 and cosine[50] == pytest.approx(0.005) and cosine[100] == pytest.approx(0)
    assert all(a >= b for a, b in zip(cosine, cosine[1:]))
    cycle = rates("one-cycle")
    assert cycle[0] == pytest.approx(0.01 / 25) and max(cycle) == cycle[25] == pytest.approx(0.01)
    assert all(a <= b for a, b in zip(cycle[:25], cycle[1:26])) and all(a >= b for a, b in zip(cycle[25:], cycle[26:]))
    assert cycle[100] == pytest.approx(0.01 / 25 / 1e4)


def test_decay_in_the_loss_uniform_or_decoupled_with_its_own_bias_decay(ratings):
    splits, meta = factors.load_splits(ratings, (0.0, 5.5), "cpu")
    train = splits["train"]
    tensors = factors.init_tensors(meta, train, 4, 0.5, (0.0, 5.5), True, 0, "cpu")
    with torch.no_grad():
        for name in ("user_bias", "item_bias"):
            tensors[name].normal_(0, 0.3)
    batch = (train.users[:50], train.items[:50], train.ratings[:50])
    l2 = _params(cf_regularized, decay="l2", weight_decay=0.2, bias_weight_decay=0.05)
    uniform = _params(cf_regularized, decay="decoupled", uniform_weight_decay=3)
    users, items = batch[0], batch[1]
    error = cf_regularized._loss(tensors, *batch, _params(cf_regularized, decay="decoupled"), len(train)).item()
    with torch.no_grad():
        sizes = (tensors["user_factors"][users].square().sum(1) + tensors["item_factors"][items].square().sum(1)).mean()
        biases = (tensors["user_bias"][users].square() + tensors["item_bias"][items].square()).mean()
    want = error + 0.2 * float(sizes) + 0.05 * float(biases)
    assert cf_regularized._loss(tensors, *batch, l2, len(train)).item() == pytest.approx(want, rel=1e-5)
    every = (tensors["user_factors"].square().sum() + tensors["item_factors"].square().sum()).item()
    assert cf_regularized._loss(tensors, *batch, uniform, len(train)).item() == pytest.approx(
        error + 3 * every / len(train), rel=1e-5)

    before = {k: t.detach().clone() for k, t in tensors.items()}
    cf_regularized._decay(tensors, _params(cf_regularized, weight_decay=0.2, bias_weight_decay=0.05), 0.1)
    for name, factor in [("user_factors", 0.98), ("item_factors", 0.98), ("user_bias", 0.995), ("item_bias", 0.995),
                         ("global_bias", 1.0)]:
        torch.testing.assert_close(tensors[name].detach(), before[name] * factor)


@pytest.mark.parametrize("name", TOPICS)
def test_training_runs_on_the_asked_threads_and_restores_them(name, ratings, tmp_path, monkeypatch):
    module, seen, run_step = TOPICS[name], [], torch_loop.TrainLoop._step
    monkeypatch.setattr(torch_loop.TrainLoop, "_step",
                        lambda *args: (seen.append(torch.get_num_threads()), run_step(*args))[1])
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        module.TOPIC.train(ratings, tmp_path / "model", _params(module, epochs=2, threads=1), 0)
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2  # cf-regularized's refit included
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", ["threads=-1", "bias_weight_decay=-1", "uniform_weight_decay=-1", "weight_decay=-0.1",
                                 "implicit_weight_decay=-1",
                                 "schedule=step", "decay=l1", "batch_size=0"])
def test_bad_cf_regularized_parameters_are_user_errors(bad):
    with pytest.raises(DlxError, match="cf-regularized") as error:
        override(cf_regularized.Params, [bad], "cf-regularized")
    assert bad.split("=")[0] in str(error.value)


@pytest.mark.parametrize("name", TOPICS)
def test_cuda_asked_for_without_cuda_is_a_one_line_error(name, ratings, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    module = TOPICS[name]
    with pytest.raises(DlxError, match="device=cuda was asked for but CUDA is not available") as error:
        module.TOPIC.train(ratings, tmp_path / "model", _params(module, device="cuda"), 0)
    assert "\n" not in str(error.value)


def test_y_range_must_cover_the_ratings(ratings, tmp_path):
    with pytest.raises(DlxError, match="y_range 2,4 does not cover the data's ratings 1..5"):
        cf_gd.TOPIC.train(ratings, tmp_path / "model", _params(cf_gd, y_range="2,4"), 0)


@pytest.mark.parametrize("name", TOPICS)
@pytest.mark.parametrize("bad", ["learning_rate=0", "momentum=1", "factors=0", "y_range=5,1", "y_range=1",
                                 "device=gpu", "optimizer=rmsprop"])
def test_bad_parameters_are_user_errors(name, bad):
    with pytest.raises(DlxError, match=name):
        override(TOPICS[name].Params, [bad], name)
