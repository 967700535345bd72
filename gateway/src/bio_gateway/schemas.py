from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from bio_shared.schemas import SafeName


class RegisterIn(BaseModel):
    email: EmailStr
    password: str = Field(min_length=1, max_length=4096)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_token: str
    refresh_expires_in: int


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    role: Literal["admin", "user"]
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None = None


class AccountList(BaseModel):
    items: list[AccountOut]
    total: int
    limit: int
    offset: int


class AccountPatch(BaseModel):
    is_active: bool | None = None
    role: Literal["admin", "user"] | None = None


class ApiKeyIn(BaseModel):
    name: Annotated[SafeName, Field(min_length=1, max_length=100)]


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    model_config = ConfigDict(from_attributes=True)

    key: str = Field(description="the secret key; shown once, send it as X-API-Key")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
    total: int
