"""The derivation of environment variable names matches pydantic-settings."""

from __future__ import annotations

import pytest

from tests.deploy.settings_env import required_env, settings_env_names


def test_env_name_derivation_follows_pydantic_settings():
    from pydantic import AliasChoices, AliasPath, BaseModel, Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class Limits(BaseModel):
        rpm: int = 60

    class Example(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="EX_", env_nested_delimiter="__")

        listen_address: str = "127.0.0.1:1"
        token: str = Field(validation_alias="SHARED_TOKEN")
        log_level: str = Field("INFO", validation_alias=AliasChoices("SHARED_LOG_LEVEL", "ex_log"))
        url: str = Field("x", validation_alias=AliasChoices(AliasPath("SHARED_URL", 0), "EX_URL"))
        limits: Limits = Limits()

    names = settings_env_names(Example)
    assert set(names) == {
        "EX_LISTEN_ADDRESS",
        "SHARED_TOKEN",
        "SHARED_LOG_LEVEL",
        "EX_LOG",
        "SHARED_URL",
        "EX_URL",
        "EX_LIMITS",
        "EX_LIMITS__RPM",
    }
    assert required_env(Example) == {"token": {"SHARED_TOKEN"}}
    # The derivation agrees with what pydantic-settings really reads.
    env = {"SHARED_TOKEN": "t", "EX_LOG": "DEBUG", "EX_LIMITS__RPM": "5", "EX_LISTEN_ADDRESS": "0.0.0.0:2"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        loaded = Example()
    assert (loaded.token, loaded.log_level, loaded.limits.rpm, loaded.listen_address) == (
        "t",
        "DEBUG",
        5,
        "0.0.0.0:2",
    )

    class ByName(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="BN_", populate_by_name=True)

        redis_url: str = Field("x", validation_alias="SHARED_REDIS_URL")

    assert set(settings_env_names(ByName)) == {"SHARED_REDIS_URL", "BN_REDIS_URL"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BN_REDIS_URL", "redis://by-name")
        assert ByName().redis_url == "redis://by-name"
