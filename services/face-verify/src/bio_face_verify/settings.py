from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bio_shared.settings import CommonSettings


class FaceVerifySettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="BIO_FACE_VERIFY_", extra="ignore")

    max_side: int = Field(1024, ge=64, le=8192, description="longer side of a normalised image, in pixels")
