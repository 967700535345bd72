from pydantic_settings import SettingsConfigDict

from bio_shared.settings import CommonSettings


class FingerprintSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="BIO_FINGERPRINT_", extra="ignore")
