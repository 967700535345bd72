"""bio_shared.settings: defaults, env prefixes (service beats common), secrets, run-mode switches."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from bio_shared.settings import CommonSettings, dev_secret


class TestSvcSettings(CommonSettings):
    __test__ = False  # not a test class for pytest
    model_config = SettingsConfigDict(env_prefix="BIO_TESTSVC_")

    only_here: str = "default-only-here"


def test_defaults_under_var_dir(var_dir: Path) -> None:
    s = CommonSettings(var_dir=var_dir)
    assert s.env == "development"
    assert s.database_url == f"sqlite:///{(var_dir / 'bio.db').as_posix()}"
    assert s.blob_dir == var_dir / "blobs"
    assert s.redis_url == ""
    assert s.embedded is True
    assert s.jobs_mode == "auto" and s.jobs_in_process is True
    assert s.is_production is False
    assert s.max_upload_bytes == 20 * 1024 * 1024
    assert s.max_image_pixels == 40_000_000
    assert s.min_image_side == 16
    assert s.job_max_attempts == 3
    assert s.identity_ttl_s == 60
    assert s.data_dir == Path("../shared/data")
    assert len(s.internal_secret) >= 32  # a generated development secret, never empty


def test_var_dir_from_env(monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    monkeypatch.setenv("BIO_VAR_DIR", str(var_dir))
    s = CommonSettings()
    assert s.var_dir == var_dir
    assert s.database_url == f"sqlite:///{var_dir.as_posix()}/bio.db"
    assert s.blob_dir == var_dir / "blobs"


def test_explicit_values_kept(var_dir: Path, tmp_path: Path) -> None:
    s = CommonSettings(var_dir=var_dir, database_url="postgresql://u@h/db", blob_dir=tmp_path / "elsewhere",
                       redis_url="redis://127.0.0.1:6379/0", internal_secret="s" * 40)
    assert s.database_url == "postgresql://u@h/db"
    assert s.blob_dir == tmp_path / "elsewhere"
    assert s.internal_secret == "s" * 40
    assert s.embedded is False
    assert not (var_dir / "secrets").exists()  # no dev secret generated when one is given


def test_common_env_prefix(monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    monkeypatch.setenv("BIO_DATABASE_URL", "postgresql://common@h/db")
    monkeypatch.setenv("bio_max_upload_bytes", "1234")  # case-insensitive
    monkeypatch.setenv("BIO_LOG_JSON", "false")
    s = CommonSettings(var_dir=var_dir)
    assert s.database_url == "postgresql://common@h/db"
    assert s.max_upload_bytes == 1234
    assert s.log_json is False


def test_service_prefix_beats_common(monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    monkeypatch.setenv("BIO_DATABASE_URL", "postgresql://common@h/db")
    monkeypatch.setenv("BIO_TESTSVC_DATABASE_URL", "postgresql://service@h/db")
    monkeypatch.setenv("BIO_LOG_LEVEL", "DEBUG")  # only the common one: inherited
    monkeypatch.setenv("BIO_TESTSVC_ONLY_HERE", "from-env")
    s = TestSvcSettings(var_dir=var_dir)
    assert s.database_url == "postgresql://service@h/db"
    assert s.log_level == "DEBUG"
    assert s.only_here == "from-env"
    # The plain CommonSettings never reads the service prefix.
    assert CommonSettings(var_dir=var_dir).database_url == "postgresql://common@h/db"


def test_common_prefix_applies_to_service_fields(monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    monkeypatch.setenv("BIO_ONLY_HERE", "common-value")
    assert TestSvcSettings(var_dir=var_dir).only_here == "common-value"
    monkeypatch.setenv("BIO_TESTSVC_ONLY_HERE", "service-value")
    assert TestSvcSettings(var_dir=var_dir).only_here == "service-value"


def test_init_kwargs_beat_env(monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    monkeypatch.setenv("BIO_TESTSVC_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("BIO_LOG_LEVEL", "DEBUG")
    assert TestSvcSettings(var_dir=var_dir, log_level="ERROR").log_level == "ERROR"


def test_service_var_dir_drives_defaults(monkeypatch: pytest.MonkeyPatch, var_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("BIO_VAR_DIR", str(tmp_path / "common"))
    monkeypatch.setenv("BIO_TESTSVC_VAR_DIR", str(var_dir))
    s = TestSvcSettings()
    assert s.var_dir == var_dir
    assert s.database_url.endswith(f"{var_dir.as_posix()}/bio.db")
    assert s.blob_dir == var_dir / "blobs"


def test_invalid_values_refused(monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    with pytest.raises(ValidationError):
        CommonSettings(var_dir=var_dir, env="staging")
    with pytest.raises(ValidationError):
        CommonSettings(var_dir=var_dir, jobs_mode="sometimes")
    monkeypatch.setenv("BIO_JOB_MAX_ATTEMPTS", "many")
    with pytest.raises(ValidationError):
        CommonSettings(var_dir=var_dir)


def test_data_dir_from_env(monkeypatch: pytest.MonkeyPatch, var_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("BIOMETRICS_DATA_DIR", str(tmp_path / "data"))
    assert CommonSettings(var_dir=var_dir).data_dir == tmp_path / "data"
    assert TestSvcSettings(var_dir=var_dir).data_dir == tmp_path / "data"


def test_data_dir_by_field_name(var_dir: Path, tmp_path: Path) -> None:
    assert CommonSettings(var_dir=var_dir, data_dir=tmp_path / "data").data_dir == tmp_path / "data"
    assert TestSvcSettings(var_dir=var_dir, data_dir=tmp_path / "d2").data_dir == tmp_path / "d2"


def test_data_dir_from_bio_env(monkeypatch: pytest.MonkeyPatch, var_dir: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("BIO_DATA_DIR", str(tmp_path / "bio-data"))
    monkeypatch.setenv("BIOMETRICS_DATA_DIR", str(tmp_path / "legacy"))
    assert CommonSettings(var_dir=var_dir).data_dir == tmp_path / "bio-data"
    monkeypatch.delenv("BIO_DATA_DIR")
    assert CommonSettings(var_dir=var_dir).data_dir == tmp_path / "legacy"


class TestProductionSecrets:
    def test_production_without_secret_raises(self, var_dir: Path) -> None:
        with pytest.raises(ValidationError, match="BIO_INTERNAL_SECRET must be set"):
            CommonSettings(var_dir=var_dir, env="production")
        assert not (var_dir / "secrets").exists()

    def test_production_env_without_secret_raises(self, monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
        monkeypatch.setenv("BIO_ENV", "production")
        with pytest.raises(ValidationError):
            TestSvcSettings(var_dir=var_dir)

    def test_production_with_secret(self, monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
        monkeypatch.setenv("BIO_ENV", "production")
        monkeypatch.setenv("BIO_INTERNAL_SECRET", "p" * 48)
        s = TestSvcSettings(var_dir=var_dir)
        assert s.is_production and s.internal_secret == "p" * 48

    def test_test_env_gets_dev_secret(self, var_dir: Path) -> None:
        s = CommonSettings(var_dir=var_dir, env="test")
        assert s.internal_secret == (var_dir / "secrets" / "internal.key").read_text().strip()


class TestDevSecret:
    def test_persisted_and_stable(self, var_dir: Path) -> None:
        a = CommonSettings(var_dir=var_dir).internal_secret
        b = CommonSettings(var_dir=var_dir).internal_secret
        c = TestSvcSettings(var_dir=var_dir).internal_secret  # every service of one install shares it
        assert a == b == c
        path = var_dir / "secrets" / "internal.key"
        assert path.read_text().strip() == a
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in (var_dir / "secrets").iterdir()] == ["internal.key"]  # no temp files left

    def test_differs_between_installs(self, tmp_path: Path) -> None:
        assert CommonSettings(var_dir=tmp_path / "one").internal_secret != \
            CommonSettings(var_dir=tmp_path / "two").internal_secret

    def test_existing_file_wins(self, var_dir: Path) -> None:
        (var_dir / "secrets").mkdir()
        (var_dir / "secrets" / "internal.key").write_text("preexisting-secret\n")
        assert CommonSettings(var_dir=var_dir).internal_secret == "preexisting-secret"

    def test_named_secrets_are_independent(self, var_dir: Path) -> None:
        a = dev_secret(var_dir, "jwt")
        b = dev_secret(var_dir, "internal")
        assert a != b and len(a) >= 48
        assert dev_secret(var_dir, "jwt") == a

    def test_concurrent_creation_agrees(self, var_dir: Path) -> None:
        results: list[str] = []
        barrier = threading.Barrier(8)

        def make() -> None:
            barrier.wait()
            results.append(dev_secret(var_dir, "race"))

        threads = [threading.Thread(target=make) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 8 and len(set(results)) == 1
        assert sorted(p.name for p in (var_dir / "secrets").iterdir()) == ["race.key"]


@pytest.mark.parametrize("mode,redis,in_process", [
    ("auto", "", True),
    ("auto", "redis://127.0.0.1:6379/0", False),
    ("inprocess", "", True),
    ("inprocess", "redis://127.0.0.1:6379/0", True),
    ("celery", "redis://127.0.0.1:6379/0", False),
    ("celery", "", False),
])
def test_jobs_in_process(var_dir: Path, mode: str, redis: str, in_process: bool) -> None:
    s = CommonSettings(var_dir=var_dir, jobs_mode=mode, redis_url=redis)
    assert s.jobs_in_process is in_process
    assert s.embedded is (not redis)


def test_jobs_mode_from_service_env(monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    monkeypatch.setenv("BIO_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("BIO_TESTSVC_JOBS_MODE", "inprocess")
    s = TestSvcSettings(var_dir=var_dir)
    assert s.redis_url == "redis://127.0.0.1:6379/3"
    assert s.jobs_in_process is True
    assert CommonSettings(var_dir=var_dir).jobs_in_process is False
