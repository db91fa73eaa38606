"""The one redaction policy: whole-word secret keys and URL passwords, whoever logs them, with an opt-out."""

from __future__ import annotations

import pytest

import autolog as al
from autolog import secrets

RUN_OPTS = {"capture_env": False, "log_system_metrics": False}


@pytest.mark.parametrize(
    "key",
    ["password", "db.password", "MLFLOW_TRACKING_PASSWORD", "passwd", "HF_TOKEN", "accessToken", "client_secret",
     "api_key", "apiKey", "APIKey", "apikey", "AWS_SECRET_ACCESS_KEY", "private_key", "SECRET_KEY", "credentials",
     "creds", "auth", "Authorization", "ssh-passphrase"],
)
def test_secret_keys(key):
    assert secrets.is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    ["token_pattern", "tokenizer", "max_tokens", "n_passes", "author", "bypass", "oauth_scope", "secretary", "learning_rate",
     "tfidf__token_pattern", "key", "sort_key", "passes"],
)
def test_ordinary_hyperparameters_are_not_secret(key):
    assert not secrets.is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("postgres://u:pw@host:5432/db", "postgres://u:***@host:5432/db"),
        ("https://ghs_x@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git"),
        ("git@github.com:org/x.git", "git@github.com:org/x.git"),
        ("token=abc123 other=1", "token=*** other=1"),
        ("export HF_TOKEN=hf_abcdefghijklmnopqrstuv", "export HF_TOKEN=***"),
        ("key ghp_0123456789abcdefghijABCDEFGHIJ here", "key *** here"),
        ("max_tokens=512 tokenizer=bert n_passes=3 bypass=1", "max_tokens=512 tokenizer=bert n_passes=3 bypass=1"),
        ('{"password": "hunter2", "user": "me"}', '{"password": "***", "user": "me"}'),
        ("sk-learn-pipeline-with-scaler", "sk-learn-pipeline-with-scaler"),
    ],
)
def test_scrub(text, clean):
    assert secrets.scrub(text) == clean
    assert secrets.scrub(clean) == clean  # idempotent: redacting twice changes nothing


def test_urls_used_again_lose_their_user_info():
    assert secrets.strip_userinfo("https://me:tok@github.com/o/pkg.git") == "https://github.com/o/pkg.git"
    assert secrets.strip_userinfo("git@github.com:o/pkg.git") == "git@github.com:o/pkg.git"


def test_scrub_keeps_code_applicable():
    assert secrets.scrub('password = os.environ["PW"]', code=True) == 'password = os.environ["PW"]'
    assert secrets.scrub('secret: "abc"', code=True) == 'secret: "***"'


def test_command_line_flags():
    argv = ["python", "train.py", "--wandb-key", "K1", "--auth", "A1", "--creds=C1", "--api-key=Q1", "--password", "P1",
            "--tokenizer", "bert", "--max-tokens", "5", "--db", "postgres://u:pw@h/x"]
    assert secrets.redact_argv(argv) == [
        "python", "train.py", "--wandb-key", "***", "--auth", "***", "--creds=***", "--api-key=***", "--password", "***",
        "--tokenizer", "bert", "--max-tokens", "5", "--db", "postgres://u:***@h/x",
    ]


def test_user_params_and_tags_are_redacted_in_the_store(store):
    with al.start_run(tags={"deploy_token": "t0"}, **RUN_OPTS) as run:
        al.log_params({"token_pattern": r"(?u)\b\w\w+\b", "db_password": "hunter2", "db_url": "postgres://u:pw@db/x",
                       "max_tokens": 512, "author": "me"})
        al.set_tag("auth", "Bearer abc")
        al.set_tags({"note": "see https://me:pw@example.com/x"})
    rec = store.get_run(run.id)
    assert rec.params == {"token_pattern": r"(?u)\b\w\w+\b", "db_password": "***", "db_url": "postgres://u:***@db/x",
                          "max_tokens": "512", "author": "me"}
    assert rec.tags["deploy_token"] == "***" and rec.tags["auth"] == "***"
    assert rec.tags["note"] == "see https://me:***@example.com/x"


def test_search_children_written_in_one_transaction_are_redacted(store):
    with al.start_run(**RUN_OPTS) as run:
        pass
    (child,) = store.create_child_runs(run.id, [("c", {"auth": "Bearer x"}, {"db_password": "y", "token_pattern": "z"}, {"m": 1.0})])
    rec = store.get_run(child)
    assert rec.tags["auth"] == "***" and rec.params == {"db_password": "***", "token_pattern": "z"}


def test_integration_params_keep_token_pattern(store):
    pytest.importorskip("sklearn", reason="pip install 'autolog[sklearn]'")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    al.autolog(only=["sklearn"], log_models=False, log_datasets=False, **RUN_OPTS)
    docs, y = ["a good film", "a bad film", "good good", "bad bad"], [1, 0, 1, 0]
    make_pipeline(TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", max_features=10), LogisticRegression()).fit(docs, y)
    run = al.last_run()
    params = store.get_run(run.id).params
    assert params["tfidfvectorizer__token_pattern"] == r"(?u)\b\w+\b"
    assert params["tfidfvectorizer__max_features"] == "10"


@pytest.mark.parametrize("how", ["option", "environment"])
def test_opt_out(store, monkeypatch, how):
    if how == "option":
        al.autolog(only=["sklearn"], redact=False)
    else:
        monkeypatch.setenv(secrets.AUTOLOG_REDACT, "0")
    assert not secrets.enabled()
    with al.start_run(**RUN_OPTS) as run:
        al.log_param("api_key", "k-123")
        al.set_tag("db", "postgres://u:pw@db/x")
    rec = store.get_run(run.id)
    assert rec.params["api_key"] == "k-123" and rec.tags["db"] == "postgres://u:pw@db/x"
    assert secrets.redact_argv(["x", "--token", "T"]) == ["x", "--token", "T"]
    al.autolog(disable=True)
    monkeypatch.delenv(secrets.AUTOLOG_REDACT, raising=False)
    assert secrets.enabled()  # disabling autolog restores the default


def test_sync_redacts_what_the_store_kept(store, monkeypatch, tmp_path):
    pytest.importorskip("mlflow", reason="pip install 'autolog[mlflow]'")
    from mlflow import MlflowClient

    from autolog.sinks.mlflow import sync_to_mlflow

    monkeypatch.setenv(secrets.AUTOLOG_REDACT, "0")  # a store written with redaction off
    with al.start_run(**RUN_OPTS) as run:
        al.log_params({"api_key": "k-123", "lr": 0.1})
        al.set_tag("db", "postgres://u:pw@db/x")
    assert store.get_run(run.id).params["api_key"] == "k-123"
    monkeypatch.delenv(secrets.AUTOLOG_REDACT)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    report = sync_to_mlflow(store, uri, progress=False)
    assert report.ok, report.errors
    remote = MlflowClient(uri).get_run(report.remote_ids[run.id])
    assert remote.data.params == {"api_key": "***", "lr": "0.1"}
    assert remote.data.tags["db"] == "postgres://u:***@db/x"


def test_sync_errors_are_scrubbed(monkeypatch):
    from autolog.sinks.mlflow_errors import scrub

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok-987654")
    message = scrub("GET https://alice:pw@mlflow.example.com/api failed with tok-987654 and api_key=abc")
    assert message == "GET https://alice:***@mlflow.example.com/api failed with *** and api_key=***"
