"""The webhook settings as read from the environment: typed, checked, and the secret never echoed."""

import pytest

from settings import Settings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_webhook_settings_are_cast_to_their_types() -> None:
    settings = Settings.from_env({
        "WEBHOOK_SECRET": SECRET, "WEBHOOK_RETRY_BASE_SECONDS": "0.3", "WEBHOOK_MAX_ATTEMPTS": "6",
        "WEBHOOK_ALLOW_PRIVATE": "1", "WEBHOOK_ALLOWED_HOSTS": " Hooks.Example.com, .partner.example ,",
    })  # fmt: skip
    assert settings.webhook_secret.reveal() == SECRET
    assert (settings.webhook_retry_base_seconds, settings.webhook_max_attempts) == (0.3, 6)
    assert settings.webhook_allow_private is True
    assert settings.webhook_allowed_hosts == ("hooks.example.com", ".partner.example")
    assert SECRET not in repr(settings) and SECRET not in str(settings.describe())
    assert Settings.from_env({"WEBHOOK_ALLOW_PRIVATE": "false"}).webhook_allow_private is False


@pytest.mark.parametrize("raw", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not*base64*at*all", "whsec_YWJj"])
def test_a_malformed_secret_stops_the_start_without_showing_it(raw: str) -> None:
    with pytest.raises(ValueError, match="WEBHOOK_SECRET is not a valid secret") as caught:
        Settings.from_env({"WEBHOOK_SECRET": raw})
    assert raw not in str(caught.value)


def test_a_flag_is_yes_or_no() -> None:
    with pytest.raises(ValueError, match="WEBHOOK_ALLOW_PRIVATE"):
        Settings.from_env({"WEBHOOK_ALLOW_PRIVATE": "maybe"})
