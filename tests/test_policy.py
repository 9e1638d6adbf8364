"""Policy files: validated strictly at load, errors name the file, the key and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from moderation.domain import Category, Decision, Severity
from moderation.errors import PolicyError
from moderation.policy import embedded_policy_dir, endpoint_name, load_policies


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A writable copy of the embedded policies."""
    target = tmp_path / "policies"
    target.mkdir()
    for entry in embedded_policy_dir().iterdir():
        (target / entry.name).write_bytes(entry.read_bytes())
    return target


def test_embedded_policies_load() -> None:
    """Every shipped policy loads, with a prompt and a REVIEW fail mode."""
    policies = load_policies()
    assert {p.jurisdiction for p in policies} >= {"CN", "US", "EU", "SG", "GLOBAL"}
    for policy in policies:
        assert len(policy.prompt) > 200
        assert policy.fail_mode is Decision.REVIEW
    assert policies.get("CN").action(Category.POLITICAL, Severity.HIGH) is Decision.BLOCK  # type: ignore[union-attr]
    assert policies.get("US").action(Category.POLITICAL, Severity.HIGH) is None  # type: ignore[union-attr]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "says"),
    [
        (
            "us.toml",
            'fail_mode = "REVIEW"',
            'fail_mode = "REVIEW"\nfail_mood = 1',
            "fail_mood: unknown key",
        ),
        ("us.toml", "SPAM ", "SPAMM", "actions.SPAMM: unknown category"),
        ("us.toml", '"openrouter", ', '"openrouterr", ', "unknown endpoint 'openrouterr'"),
        (
            "us.toml",
            'prompt = "us.md"',
            'prompt = "missing.md"',
            "prompt: file 'missing.md' not found",
        ),
        ("us.toml", 'HIGH = "REVIEW", CRITICAL', 'HIGH = "MAYBE", CRITICAL', "actions.ABUSE.HIGH"),
        ("us.toml", 'version = "us-2026.12.1"\n', "", "version: required key is missing"),
        ("us.toml", 'jurisdiction = "US"', 'jurisdiction = "UK"', "rename the file to uk.toml"),
        ("us.toml", "[actions]", "[actions", "not valid UTF-8 TOML"),
        ("us.toml", "escalate_at = 0.35", "escalate_at = 1.5", "scorer.escalate_at: Value error"),
        ("us.toml", 'block_at = "never"', "block_at = 0.2", "block_at must not be below"),
        ("us.toml", 'block_at = "never"', 'block_at = "sometimes"', "scorer.block_at"),
        ("us.toml", 'block_at = "never"', "block_after = 0.9", "scorer.block_after: unknown key"),
    ],
)
def test_broken_policy_refuses_to_load(
    policy_dir: Path, file: str, old: str, new: str, says: str
) -> None:
    """A broken policy stops the start with the file and what is wrong."""
    _edit(policy_dir / file, old, new)
    with pytest.raises(PolicyError) as caught:
        load_policies(policy_dir)
    assert file in str(caught.value)
    assert says in str(caught.value)


def test_empty_prompt_is_refused(policy_dir: Path) -> None:
    """A policy whose prompt file is empty is refused."""
    (policy_dir / "sg.md").write_text("  \n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"sg.toml: prompt: 'sg.md' is empty"):
        load_policies(policy_dir)


def test_unknown_default_jurisdiction_is_refused() -> None:
    """The default jurisdiction must have a policy."""
    with pytest.raises(PolicyError, match="MODERATION_DEFAULT_JURISDICTION"):
        load_policies(default="XX")


def test_empty_directory_is_refused(tmp_path: Path) -> None:
    """A directory with no policy is refused."""
    with pytest.raises(PolicyError, match=r"no \*.toml policy files"):
        load_policies(tmp_path)


def test_operator_policy_dir_replaces_embedded(policy_dir: Path) -> None:
    """An operator's directory is used instead of the embedded policies."""
    shutil.copy(policy_dir / "us.toml", policy_dir / "ca.toml")
    _edit(policy_dir / "ca.toml", 'jurisdiction = "US"', 'jurisdiction = "CA"')
    assert "CA" in load_policies(policy_dir)


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("openrouter.ai", "openrouter"),
        ("dashscope.aliyuncs.com", "dashscope-cn"),
        ("dashscope-intl.aliyuncs.com", "dashscope-intl"),
        ("127.0.0.1", "self-hosted"),
        ("[::1]", "self-hosted"),
        ("vllm.models.svc.cluster.local", "self-hosted"),
        ("api.example.com", "custom"),
    ],
)
def test_endpoint_names(host: str, name: str) -> None:
    """Model hosts are named for data-residency rules."""
    assert endpoint_name(host) == name


def test_data_residency() -> None:
    """CN content may go to a mainland or self-hosted model, never to OpenRouter."""
    policies = load_policies()
    cn, us = policies.get("CN"), policies.get("US")
    assert cn is not None
    assert us is not None
    assert not cn.allows_endpoint("openrouter.ai")
    assert cn.allows_endpoint("dashscope.aliyuncs.com")
    assert cn.allows_endpoint("127.0.0.1")
    assert us.allows_endpoint("openrouter.ai")
