"""Loading and validating policy directories: every failure is InvalidPolicy, fail closed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from registry.errors import InvalidPolicy
from registry.policy import (
    CedarAuthorizer,
    PolicyBundle,
    default_policy_dir,
    from_texts,
    load_default,
    load_dir,
    validate,
)

EXPECTED_IDS = {
    "admin-all",
    "auditor-read-all",
    "base-models-readable",
    "self-service-tokens",
    "requester-cancels",
    "members-read",
    "developers-write",
    "approvers-approve",
    "operators-manage",
    "registry-uploads",
    "operators-register-base-models",
    "no-machine-approvals",
    "four-eyes-never-own",
    "serving-reports",
    "metrics-readable",
    "members-manage-webhooks",
}


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), target)
    return target


def append_policy(directory: Path, text: str) -> None:
    path = directory / "registry.cedar"
    path.write_text(path.read_text() + "\n" + text + "\n")


def invalid(bundle: PolicyBundle) -> list[str]:
    with pytest.raises(InvalidPolicy) as info:
        validate(bundle)
    assert info.value.code == "invalid_policy"
    errors = info.value.context["errors"]
    assert isinstance(errors, list)
    assert errors
    return [str(e) for e in errors]


class TestDefaults:
    def test_default_dir_is_the_repository_policies(self) -> None:
        root = default_policy_dir()
        assert root.name == "policies"
        assert (root / "schema.cedarschema").is_file()
        assert (root / "registry.cedar").is_file()
        assert (root / "gates.yaml").is_file()

    def test_defaults_validate(self) -> None:
        ids = validate(load_default())
        assert set(ids) == EXPECTED_IDS
        assert len(ids) == len(set(ids))

    def test_ids_come_in_source_order(self) -> None:
        bundle = load_default()
        in_text = re.findall(r'@id\("([^"]+)"\)', bundle.policies_text)
        assert list(validate(bundle)) == in_text

    def test_every_file_in_the_directory_is_loaded(self) -> None:
        bundle = load_default()
        for path in sorted(default_policy_dir().glob("*.cedar")):
            assert path.read_text().strip() in bundle.policies_text
        assert bundle.gates_text == (default_policy_dir() / "gates.yaml").read_text()

    def test_default_gates_parse(self) -> None:
        gates = load_default().gates()
        assert gates.defaults.approvals == 1
        assert gates.defaults.require_validated


class TestInvalidPolicies:
    def test_unknown_attribute(self, policy_dir: Path) -> None:
        append_policy(
            policy_dir,
            '@id("team-leads")\n'
            'permit (principal, action == Action::"archive", resource)\n'
            'when { principal.team == "leads" };',
        )
        errors = invalid(load_dir(policy_dir))
        assert any("team-leads" in e and "team" in e for e in errors)

    def test_unknown_action(self, policy_dir: Path) -> None:
        append_policy(
            policy_dir, '@id("x")\npermit (principal, action == Action::"delete", resource);'
        )
        assert invalid(load_dir(policy_dir))

    def test_missing_id(self, policy_dir: Path) -> None:
        append_policy(policy_dir, 'permit (principal, action == Action::"read", resource);')
        errors = invalid(load_dir(policy_dir))
        assert any("missing @id" in e for e in errors)

    def test_empty_id(self, policy_dir: Path) -> None:
        append_policy(
            policy_dir, '@id("")\npermit (principal, action == Action::"read", resource);'
        )
        assert any("missing @id" in e for e in invalid(load_dir(policy_dir)))

    def test_duplicate_id(self, policy_dir: Path) -> None:
        append_policy(
            policy_dir,
            '@id("admin-all")\npermit (principal, action == Action::"read", resource);',
        )
        errors = invalid(load_dir(policy_dir))
        assert any("duplicate @id 'admin-all'" in e for e in errors)

    def test_duplicate_id_across_files(self, policy_dir: Path) -> None:
        (policy_dir / "zz-extra.cedar").write_text(
            '@id("members-read")\nforbid (principal, action == Action::"read", resource);\n'
        )
        assert any("duplicate" in e for e in invalid(load_dir(policy_dir)))

    def test_policy_syntax_error(self, policy_dir: Path) -> None:
        append_policy(policy_dir, '@id("broken")\npermit (principal, action')
        invalid(load_dir(policy_dir))

    def test_templates_refused(self, policy_dir: Path) -> None:
        append_policy(policy_dir, '@id("tpl")\npermit (principal == ?principal, action, resource);')
        invalid(load_dir(policy_dir))

    def test_schema_syntax_error(self, policy_dir: Path) -> None:
        (policy_dir / "schema.cedarschema").write_text("entity Principal = {")
        invalid(load_dir(policy_dir))

    def test_schema_must_declare_every_action(self, policy_dir: Path) -> None:
        path = policy_dir / "schema.cedarschema"
        path.write_text(path.read_text().replace('"manage_tokens",\n', ""))
        errors = invalid(load_dir(policy_dir))
        assert any("manage_tokens" in e for e in errors)

    def test_schema_must_keep_the_promotion_attributes(self, policy_dir: Path) -> None:
        path = policy_dir / "schema.cedarschema"
        text = path.read_text().replace("  ci_actor: String,", "")
        path.write_text(text)
        # the shipped four-eyes policy also stops validating
        assert any("Promotion attributes" in e for e in invalid(load_dir(policy_dir)))

    def test_broken_gates_yaml(self, policy_dir: Path) -> None:
        (policy_dir / "gates.yaml").write_text("defaults: [unclosed\n")
        invalid(load_dir(policy_dir))

    def test_gates_yaml_unknown_key(self, policy_dir: Path) -> None:
        (policy_dir / "gates.yaml").write_text("defaults:\n  approvers: 2\n")
        errors = invalid(load_dir(policy_dir))
        assert any("approvers" in e for e in errors)

    def test_authorizer_refuses_an_invalid_bundle(self, policy_dir: Path) -> None:
        append_policy(policy_dir, "permit (principal, action, resource);")
        with pytest.raises(InvalidPolicy):
            CedarAuthorizer(load_dir(policy_dir))


class TestDirectory:
    def test_missing_directory(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidPolicy):
            load_dir(tmp_path / "nope")

    @pytest.mark.parametrize("name", ["schema.cedarschema", "registry.cedar", "gates.yaml"])
    def test_missing_file(self, policy_dir: Path, name: str) -> None:
        (policy_dir / name).unlink()
        with pytest.raises(InvalidPolicy):
            load_dir(policy_dir)

    def test_extra_policy_file_is_loaded_in_sorted_order(self, policy_dir: Path) -> None:
        (policy_dir / "aa-first.cedar").write_text(
            '@id("aa-viewers-read-registry")\n'
            'permit (principal, action == Action::"read", resource is Registry)\n'
            'when { principal.role == "viewer" };\n'
        )
        bundle = load_dir(policy_dir)
        assert validate(bundle)[0] == "aa-viewers-read-registry"
        assert bundle.policies_text.index("aa-first") < bundle.policies_text.index("registry")

    def test_non_utf8_file(self, policy_dir: Path) -> None:
        (policy_dir / "registry.cedar").write_bytes(b"\xff\xfe\x00")
        with pytest.raises(InvalidPolicy):
            load_dir(policy_dir)


class TestDigest:
    def test_stable(self, policy_dir: Path) -> None:
        assert load_dir(policy_dir).digest == load_dir(policy_dir).digest == load_default().digest

    def test_format(self) -> None:
        digest = load_default().digest
        assert digest.startswith("sha256:")
        assert len(digest) == len("sha256:") + 64

    @pytest.mark.parametrize("name", ["schema.cedarschema", "registry.cedar", "gates.yaml"])
    def test_changes_when_a_file_changes(self, policy_dir: Path, name: str) -> None:
        before = load_dir(policy_dir).digest
        path = policy_dir / name
        comment = "# edited" if name.endswith(".yaml") else "// edited"
        path.write_text(f"{path.read_text()}\n{comment}\n")
        assert load_dir(policy_dir).digest != before

    def test_from_texts_matches_load_dir(self) -> None:
        bundle = load_default()
        again = from_texts(
            bundle.schema_text, bundle.policies_text, bundle.gates_text, bundle.rollout_text
        )
        assert again == bundle

    def test_texts_are_not_confusable(self) -> None:
        assert from_texts("a", "b", "c").digest != from_texts("ab", "", "c").digest
