"""Pod settings for Kubernetes-routed tasks: validate, merge, and turn into ``Call`` values.

Settings come in layers, merged in this order (later wins):

    routing.kubernetes.pod            defaults for every Kubernetes task
    routing.kubernetes.sizes.<size>   the size tier chosen for the node (see routing.py)
    meta.dagfactory.pod               the node's own settings, from the dbt project

Mappings merge key by key (``container_resources``, ``node_selector``, ``labels``,
``annotations``, ``env_vars``); lists (``tolerations``, ``volumes``, ``volume_mounts``,
``secrets``, ``image_pull_secrets``) and plain values replace the earlier layer's; a key set
to ``null`` in a later layer removes it.

Each layer is checked on its own so an error names the key where the bad value was written.
Values are normalised to one shape (Python model-attribute names, strings for quantities),
then converted to ``Call("k8s.V1...")`` values that ``_pysrc.literal`` prints as constructor
calls of ``kubernetes.client.models`` (imported as ``k8s`` in the generated file; the module
ships with the cncf-kubernetes provider). This module never imports ``kubernetes``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dagfactory._pysrc import Call, jinja_escape
from dagfactory.config import KubernetesConfig, describe_value
from dagfactory.errors import ConfigError, did_you_mean

__all__ = [
    "POD_KEYS",
    "SIZE_KEYS",
    "PodPolicy",
    "PodSettingsError",
    "check_merged",
    "label_value",
    "merge_layers",
    "normalize_pod",
    "pod_operator_kwargs",
    "pod_override",
    "pod_policy",
    "qualified_name",
    "quantity",
    "quantity_value",
]

#: the generated file imports ``from kubernetes.client import models as k8s``
K8S = "k8s"
#: the provider's Secret helper (``airflow.providers.cncf.kubernetes.secret.Secret``)
SECRET = "Secret"


class PodSettingsError(ValueError):
    """A bad pod setting; the caller turns it into the error of the layer it checked."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


# -- validation patterns (Kubernetes' own rules, apimachinery/pkg/util/validation) ----------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # namespaces, volume names (≤ 63)
_DNS_SUBDOMAIN = re.compile(  # secrets, service accounts, config maps (≤ 253)
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")  # label names/values (≤ 63)
_QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")

IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TOLERATION_OPERATORS = ("Equal", "Exists")
TOLERATION_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
NODE_SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn")
LABEL_SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "In", "NotIn")

#: keys of a pod-settings mapping, in the order they are emitted
POD_KEYS = (
    "image",
    "namespace",
    "service_account_name",
    "image_pull_policy",
    "image_pull_secrets",
    "container_resources",
    "node_selector",
    "tolerations",
    "affinity",
    "env_vars",
    "secrets",
    "volumes",
    "volume_mounts",
    "labels",
    "annotations",
)
#: keys a size tier holds besides pod settings
SIZE_KEYS = ("min_seconds",)

# Kubernetes objects dagfactory builds, in the spelling of a pod YAML:
#   model -> {YAML field: (model attribute, kind, required)}
# A kind is a scalar check from _SCALARS, another model, or "[kind]" for a list of it.
# Required fields are the ones the Kubernetes client refuses to construct without, so a
# missing one is a build error here rather than an import error in Airflow.
_MODELS: dict[str, dict[str, tuple[str, str, bool]]] = {
    "V1Toleration": {
        "key": ("key", "qualified", False),
        "operator": ("operator", "toleration_operator", False),
        "value": ("value", "label_value", False),
        "effect": ("effect", "effect", False),
        "tolerationSeconds": ("toleration_seconds", "int", False),
    },
    "V1Volume": {
        "name": ("name", "dns_label", True),
        "persistentVolumeClaim": (
            "persistent_volume_claim",
            "V1PersistentVolumeClaimVolumeSource",
            False,
        ),
        "configMap": ("config_map", "V1ConfigMapVolumeSource", False),
        "secret": ("secret", "V1SecretVolumeSource", False),
        "emptyDir": ("empty_dir", "V1EmptyDirVolumeSource", False),
        "hostPath": ("host_path", "V1HostPathVolumeSource", False),
    },
    "V1PersistentVolumeClaimVolumeSource": {
        "claimName": ("claim_name", "dns_subdomain", True),
        "readOnly": ("read_only", "bool", False),
    },
    "V1ConfigMapVolumeSource": {
        "name": ("name", "dns_subdomain", False),
        "defaultMode": ("default_mode", "int", False),
        "optional": ("optional", "bool", False),
        "items": ("items", "[V1KeyToPath]", False),
    },
    "V1SecretVolumeSource": {
        "secretName": ("secret_name", "dns_subdomain", False),
        "defaultMode": ("default_mode", "int", False),
        "optional": ("optional", "bool", False),
        "items": ("items", "[V1KeyToPath]", False),
    },
    "V1EmptyDirVolumeSource": {
        "medium": ("medium", "str", False),
        "sizeLimit": ("size_limit", "quantity", False),
    },
    "V1HostPathVolumeSource": {
        "path": ("path", "absolute_path", True),
        "type": ("type", "str", False),
    },
    "V1KeyToPath": {
        "key": ("key", "str", True),
        "path": ("path", "str", True),
        "mode": ("mode", "int", False),
    },
    "V1VolumeMount": {
        "name": ("name", "dns_label", True),
        "mountPath": ("mount_path", "absolute_path", True),
        "subPath": ("sub_path", "str", False),
        "readOnly": ("read_only", "bool", False),
    },
    "V1Affinity": {
        "nodeAffinity": ("node_affinity", "V1NodeAffinity", False),
        "podAffinity": ("pod_affinity", "V1PodAffinity", False),
        "podAntiAffinity": ("pod_anti_affinity", "V1PodAntiAffinity", False),
    },
    "V1NodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": (
            "required_during_scheduling_ignored_during_execution",
            "V1NodeSelector",
            False,
        ),
        "preferredDuringSchedulingIgnoredDuringExecution": (
            "preferred_during_scheduling_ignored_during_execution",
            "[V1PreferredSchedulingTerm]",
            False,
        ),
    },
    "V1NodeSelector": {
        "nodeSelectorTerms": ("node_selector_terms", "[V1NodeSelectorTerm]", True),
    },
    "V1NodeSelectorTerm": {
        "matchExpressions": ("match_expressions", "[V1NodeSelectorRequirement]", False),
        "matchFields": ("match_fields", "[V1NodeSelectorRequirement]", False),
    },
    "V1NodeSelectorRequirement": {
        "key": ("key", "qualified", True),
        "operator": ("operator", "node_operator", True),
        "values": ("values", "[str]", False),
    },
    "V1PreferredSchedulingTerm": {
        "weight": ("weight", "int", True),
        "preference": ("preference", "V1NodeSelectorTerm", True),
    },
    "V1PodAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": (
            "required_during_scheduling_ignored_during_execution",
            "[V1PodAffinityTerm]",
            False,
        ),
        "preferredDuringSchedulingIgnoredDuringExecution": (
            "preferred_during_scheduling_ignored_during_execution",
            "[V1WeightedPodAffinityTerm]",
            False,
        ),
    },
    "V1PodAffinityTerm": {
        "labelSelector": ("label_selector", "V1LabelSelector", False),
        "namespaceSelector": ("namespace_selector", "V1LabelSelector", False),
        "namespaces": ("namespaces", "[dns_label]", False),
        "topologyKey": ("topology_key", "qualified", True),
        "matchLabelKeys": ("match_label_keys", "[qualified]", False),
        "mismatchLabelKeys": ("mismatch_label_keys", "[qualified]", False),
    },
    "V1WeightedPodAffinityTerm": {
        "weight": ("weight", "int", True),
        "podAffinityTerm": ("pod_affinity_term", "V1PodAffinityTerm", True),
    },
    "V1LabelSelector": {
        "matchLabels": ("match_labels", "labels", False),
        "matchExpressions": ("match_expressions", "[V1LabelSelectorRequirement]", False),
    },
    "V1LabelSelectorRequirement": {
        "key": ("key", "qualified", True),
        "operator": ("operator", "label_operator", True),
        "values": ("values", "[str]", False),
    },
}
_MODELS["V1PodAntiAffinity"] = _MODELS["V1PodAffinity"]
_VOLUME_SOURCES = [k for k in _MODELS["V1Volume"] if k != "name"]
_SECRET_FIELDS = ("deploy_type", "deploy_target", "secret", "key")


# -- small checks -----------------------------------------------------------------------------


def _unknown(value: Mapping[str, Any], valid: tuple[str, ...] | list[str], key: str) -> None:
    for name in value:
        if name not in valid:
            hint = did_you_mean(str(name), valid)
            raise PodSettingsError(
                f"unknown key{hint} (valid keys here: {', '.join(sorted(valid))})",
                f"{key}.{name}" if key else str(name),
            )


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PodSettingsError(f"expected a mapping, got {describe_value(value)}", key)
    for name in value:
        if not isinstance(name, str):
            raise PodSettingsError(f"keys must be strings, got {name!r}", key)
    return value


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise PodSettingsError(f"expected a list, got {describe_value(value)}", key)
    return value


def _text(value: Any, key: str) -> str:
    """A scalar as text: YAML turns ``4`` or ``true`` into numbers and booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise PodSettingsError(f"expected a string, got {describe_value(value)}", key)


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise PodSettingsError(f"expected a string, got {describe_value(value)}", key)
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise PodSettingsError(f"expected true or false, got {describe_value(value)}", key)
    return value


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PodSettingsError(f"expected a non-negative integer, got {describe_value(value)}", key)
    return value


def _dns_label(value: Any, key: str, what: str) -> str:
    value = _string(value, key)
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise PodSettingsError(
            f"{value!r} is not a valid {what}: at most 63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit",
            key,
        )
    return value


def _dns_subdomain(value: Any, key: str, what: str) -> str:
    value = _string(value, key)
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise PodSettingsError(
            f"{value!r} is not a valid {what}: at most 253 lowercase letters, digits, '-' or "
            "'.', starting and ending with a letter or digit",
            key,
        )
    return value


def qualified_name(value: Any, key: str, what: str = "label key") -> str:
    """A label/annotation key or resource name: ``[prefix/]name`` (prefix a DNS subdomain)."""
    value = _string(value, key)
    prefix, slash, name = value.rpartition("/")
    ok = bool(name) and len(name) <= 63 and bool(_NAME_PART.fullmatch(name))
    if slash:
        ok = ok and len(prefix) <= 253 and bool(_DNS_SUBDOMAIN.fullmatch(prefix))
    if not ok:
        raise PodSettingsError(
            f"{value!r} is not a valid {what}: an optional DNS prefix and '/', then at most 63 "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            key,
        )
    return value


def label_value(value: Any, key: str) -> str:
    text = _text(value, key)
    if text and (len(text) > 63 or not _NAME_PART.fullmatch(text)):
        raise PodSettingsError(
            f"{text!r} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit",
            key,
        )
    return text


def quantity(value: Any, key: str) -> str:
    """A Kubernetes quantity such as ``500m``, ``2``, ``1.5Gi`` (numbers from YAML allowed)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PodSettingsError(
            f"expected a quantity such as '500m' or '1Gi', got {describe_value(value)}", key
        )
    text = str(value)
    if not _QUANTITY.fullmatch(text):
        raise PodSettingsError(
            f"{text!r} is not a Kubernetes quantity: a non-negative number with an optional "
            "suffix (m, k, M, G, Ki, Mi, Gi, ...), e.g. '500m' or '1Gi'",
            key,
        )
    return text


def _choice(value: Any, choices: tuple[str, ...], key: str) -> str:
    value = _string(value, key)
    if value not in choices:
        raise PodSettingsError(f"{value!r} is not one of {', '.join(choices)}", key)
    return value


# -- normalisation of one layer -----------------------------------------------------------------


def _absolute_path(value: Any, key: str) -> str:
    value = _string(value, key)
    if not value.startswith("/"):
        raise PodSettingsError(f"{value!r} is not an absolute path", key)
    return value


_SCALARS: dict[str, Any] = {
    "str": _string,
    "int": _int,
    "bool": _bool,
    "quantity": lambda v, k: quantity(v, k),
    "absolute_path": _absolute_path,
    "dns_label": lambda v, k: _dns_label(v, k, "name"),
    "dns_subdomain": lambda v, k: _dns_subdomain(v, k, "name"),
    "qualified": lambda v, k: qualified_name(v, k),
    "label_value": lambda v, k: label_value(v, k),
    "labels": lambda v, k: {n: x for n, x in _labels(v, k).items() if x is not None},
    "toleration_operator": lambda v, k: _choice(v, TOLERATION_OPERATORS, k),
    "effect": lambda v, k: _choice(v, TOLERATION_EFFECTS, k),
    "node_operator": lambda v, k: _choice(v, NODE_SELECTOR_OPERATORS, k),
    "label_operator": lambda v, k: _choice(v, LABEL_SELECTOR_OPERATORS, k),
}


def _model(model: str, raw: Any, key: str) -> dict[str, Any]:
    """A Kubernetes object in pod-YAML spelling -> {model attribute: checked value}."""
    fields = _MODELS[model]
    raw = _mapping(raw, key)
    _unknown(raw, list(fields), key)
    out: dict[str, Any] = {}
    for name, (attr, kind, required) in fields.items():
        value = raw.get(name)
        if value is None:
            if required:
                raise PodSettingsError(f"{name} is required here", f"{key}.{name}")
            continue
        out[attr] = _value(kind, value, f"{key}.{name}")
    return out


def _value(kind: str, value: Any, key: str) -> Any:
    if kind.startswith("["):
        return [_value(kind[1:-1], v, f"{key}[{i}]") for i, v in enumerate(_list(value, key))]
    if kind in _MODELS:
        return _model(kind, value, key)
    return _SCALARS[kind](value, key)


def _resources(raw: Any, key: str) -> dict[str, dict[str, str | None]]:
    raw = _mapping(raw, key)
    _unknown(raw, ("limits", "requests"), key)
    out: dict[str, dict[str, str | None]] = {}
    for part, amounts in raw.items():
        if amounts is None:
            out[part] = None  # type: ignore[assignment]  # removes the part when merged
            continue
        sub = f"{key}.{part}"
        out[part] = {
            qualified_name(name, f"{sub}.{name}", "resource name"): (
                None if amount is None else quantity(amount, f"{sub}.{name}")
            )
            for name, amount in _mapping(amounts, sub).items()
        }
    return out


def _labels(raw: Any, key: str) -> dict[str, str | None]:
    return {
        qualified_name(name, f"{key}.{name}"): None
        if value is None
        else label_value(value, f"{key}.{name}")
        for name, value in _mapping(raw, key).items()
    }


def _toleration(raw: Any, key: str) -> dict[str, Any]:
    out = _model("V1Toleration", raw, key)
    if out.get("operator") == "Exists" and out.get("value"):
        raise PodSettingsError("a toleration with operator Exists takes no value", f"{key}.value")
    return out


def _volume(raw: Any, key: str) -> dict[str, Any]:
    out = _model("V1Volume", raw, key)
    if len(out) != 2:  # the name and one source
        raise PodSettingsError(
            f"a volume needs exactly one source out of {', '.join(_VOLUME_SOURCES)}", key
        )
    return out


def _mount(raw: Any, key: str, escape: bool) -> dict[str, Any]:
    out = _model("V1VolumeMount", raw, key)
    if escape and "sub_path" in out:  # sub_path is an Airflow template field of V1VolumeMount
        out["sub_path"] = jinja_escape(out["sub_path"])
    return out


def _secret(raw: Any, key: str) -> dict[str, Any]:
    raw = _mapping(raw, key)
    _unknown(raw, _SECRET_FIELDS, key)
    for required in ("deploy_type", "secret"):
        if raw.get(required) is None:
            raise PodSettingsError(f"a secret needs {required}", f"{key}.{required}")
    deploy_type = _choice(raw["deploy_type"], ("env", "volume"), f"{key}.deploy_type")
    out: dict[str, Any] = {
        "deploy_type": deploy_type,
        "deploy_target": None,
        "secret": _dns_subdomain(raw["secret"], f"{key}.secret", "secret name"),
        "key": None,
    }
    if raw.get("key") is not None:
        out["key"] = _string(raw["key"], f"{key}.key")
        if not _SECRET_KEY.fullmatch(out["key"]):
            raise PodSettingsError(f"{out['key']!r} is not a valid secret key", f"{key}.key")
    target = raw.get("deploy_target")
    if target is not None:
        target = _string(target, f"{key}.deploy_target")
        if deploy_type == "env" and not _ENV_NAME.fullmatch(target):
            raise PodSettingsError(
                f"{target!r} is not a valid environment variable name", f"{key}.deploy_target"
            )
        if deploy_type == "volume" and not target.startswith("/"):
            raise PodSettingsError(
                "a volume secret's deploy_target must be an absolute path", f"{key}.deploy_target"
            )
        out["deploy_target"] = target.upper() if deploy_type == "env" else target
    if deploy_type == "volume" and target is None:
        raise PodSettingsError(
            "a volume secret needs deploy_target (the mount path)", f"{key}.deploy_target"
        )
    if out["key"] is not None and target is None:
        raise PodSettingsError("a secret with a key needs deploy_target", f"{key}.deploy_target")
    return out


def normalize_pod(
    raw: Any, key: str, *, escape: bool = False, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Check one layer of pod settings written at ``key``; return it in normalised shape.

    ``escape`` marks a layer from the dbt project (``meta``): its free text that lands in
    Airflow-templated fields (env values, annotations, sub paths) is made to render as itself.
    ``extra`` names keys the caller handles (``min_seconds`` on a size) and are passed through.
    """
    if raw is None:
        return {}
    raw = _mapping(raw, key)
    _unknown(raw, (*POD_KEYS, *extra), key)
    out: dict[str, Any] = {}
    for name, value in raw.items():
        sub = f"{key}.{name}"
        if name in extra:
            out[name] = value
            continue
        if value is None:
            out[name] = None  # removes the key from earlier layers
            continue
        if name == "image":
            image = _string(value, sub)
            if len(image) > 512 or not _IMAGE.fullmatch(image):
                raise PodSettingsError(f"{image!r} is not a valid image reference", sub)
            out[name] = image
        elif name == "namespace":
            out[name] = _dns_label(value, sub, "namespace")
        elif name == "service_account_name":
            out[name] = _dns_subdomain(value, sub, "service account name")
        elif name == "image_pull_policy":
            out[name] = _choice(value, IMAGE_PULL_POLICIES, sub)
        elif name == "image_pull_secrets":
            out[name] = [
                _dns_subdomain(v, f"{sub}[{i}]", "secret name")
                for i, v in enumerate(_list(value, sub))
            ]
        elif name == "container_resources":
            out[name] = _resources(value, sub)
        elif name in ("node_selector", "labels"):
            out[name] = _labels(value, sub)
        elif name == "annotations":
            out[name] = {
                qualified_name(k, f"{sub}.{k}", "annotation key"): (
                    None if v is None else _escaped(_text(v, f"{sub}.{k}"), escape)
                )
                for k, v in _mapping(value, sub).items()
            }
        elif name == "env_vars":
            env = {}
            for k, v in _mapping(value, sub).items():
                if not _ENV_NAME.fullmatch(k):
                    raise PodSettingsError(
                        f"{k!r} is not a valid environment variable name", f"{sub}.{k}"
                    )
                env[k] = None if v is None else _escaped(_text(v, f"{sub}.{k}"), escape)
            out[name] = env
        elif name == "tolerations":
            out[name] = [_toleration(v, f"{sub}[{i}]") for i, v in enumerate(_list(value, sub))]
        elif name == "affinity":
            out[name] = _model("V1Affinity", value, sub)
        elif name == "secrets":
            out[name] = [_secret(v, f"{sub}[{i}]") for i, v in enumerate(_list(value, sub))]
        elif name == "volumes":
            out[name] = [_volume(v, f"{sub}[{i}]") for i, v in enumerate(_list(value, sub))]
        elif name == "volume_mounts":
            out[name] = [_mount(v, f"{sub}[{i}]", escape) for i, v in enumerate(_list(value, sub))]
    return out


def _escaped(text: str, escape: bool) -> str:
    return jinja_escape(text) if escape else text


_SUFFIX = {
    **{s: 1024**i for i, s in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: 1000**i for i, s in enumerate(("", "k", "M", "G", "T", "P", "E")) if s},
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
}


def quantity_value(text: str) -> Decimal:
    """The number a valid quantity stands for (``500m`` -> 0.5, ``1Ki`` -> 1024)."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(text)
    number, suffix = Decimal(match.group(1)), match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIX[suffix]


@dataclass(frozen=True)
class PodPolicy:
    """Config-level pod settings, checked once: the defaults and each size tier."""

    defaults: Mapping[str, Any]
    sizes: Mapping[str, Mapping[str, Any]]
    thresholds: tuple[tuple[float, str], ...]  # (min_seconds, size), highest first


def pod_policy(kubernetes: KubernetesConfig) -> PodPolicy:
    """Check ``routing.kubernetes.pod``, ``.sizes``, ``.image`` and ``.namespace``.

    Called by ``load_config`` (so a bad setting stops the build before the manifest is read)
    and by routing; a mistake is a ConfigError naming the key.
    """
    try:
        defaults = normalize_pod(kubernetes.pod, "routing.kubernetes.pod")
        if kubernetes.image is not None:
            normalize_pod({"image": kubernetes.image}, "routing.kubernetes")
        if kubernetes.namespace is not None:
            normalize_pod({"namespace": kubernetes.namespace}, "routing.kubernetes")
        sizes: dict[str, Mapping[str, Any]] = {}
        thresholds = []
        for name, raw in sorted(kubernetes.sizes.items()):
            key = f"routing.kubernetes.sizes.{name}"
            size = normalize_pod(raw, key, extra=SIZE_KEYS)
            minimum = size.pop("min_seconds", None)
            if minimum is not None:
                if (
                    isinstance(minimum, bool)
                    or not isinstance(minimum, (int, float))
                    or minimum < 0
                ):
                    raise PodSettingsError(
                        f"expected a non-negative number of seconds, got {minimum!r}",
                        f"{key}.min_seconds",
                    )
                thresholds.append((float(minimum), name))
            sizes[name] = size
    except PodSettingsError as exc:
        raise ConfigError(exc.message, key=exc.key) from None
    if kubernetes.default_size is not None and kubernetes.default_size not in sizes:
        raise ConfigError(
            f"unknown size {kubernetes.default_size!r}; sizes defined: "
            f"{', '.join(sizes) or '(none)'}",
            key="routing.kubernetes.default_size",
        )
    thresholds.sort(key=lambda t: (-t[0], t[1]))
    return PodPolicy(defaults, sizes, tuple(thresholds))


def check_merged(pod: Mapping[str, Any]) -> None:
    """Rules that span layers: requests within limits, mounts naming a volume."""
    resources = pod.get("container_resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for name in sorted(set(requests) & set(limits)):
        if quantity_value(requests[name]) > quantity_value(limits[name]):
            raise PodSettingsError(
                f"the request {requests[name]} is over the limit {limits[name]} once the "
                "layers are merged (config pod, size, meta); Kubernetes would reject the pod",
                f"container_resources.requests.{name}",
            )
    volumes = {v["name"] for v in pod.get("volumes") or ()}
    for index, mount in enumerate(pod.get("volume_mounts") or ()):
        if mount["name"] not in volumes:
            raise PodSettingsError(
                f"volume mount {mount['name']!r} names no volume "
                f"(volumes: {', '.join(sorted(volumes)) or 'none'})",
                f"volume_mounts[{index}].name",
            )


def merge_layers(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge normalised layers: mappings key by key, everything else replaced; None removes."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer)
    return merged


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in over.items():
        if value is None:
            out.pop(name, None)
        elif (
            isinstance(value, Mapping) and isinstance(out.get(name), Mapping) and name != "affinity"
        ):
            out[name] = _merge(out[name], value)
        elif isinstance(value, Mapping):
            out[name] = _merge({}, value)  # drops None markers left in a first layer
        else:
            out[name] = value
    return out


# -- conversion to constructor calls --------------------------------------------------------


def _k8s(model: str, /, **kwargs: Any) -> Call:
    """``k8s.<model>(...)`` with the keyword arguments that are set."""
    return Call(f"{K8S}.{model}", (), tuple((k, v) for k, v in kwargs.items() if v is not None))


def resources_call(resources: Mapping[str, Mapping[str, str]]) -> Call | None:
    limits = dict(resources.get("limits") or {}) or None
    requests = dict(resources.get("requests") or {}) or None
    if not limits and not requests:
        return None
    return _k8s("V1ResourceRequirements", limits=limits, requests=requests)


def model_call(model: str, value: Mapping[str, Any]) -> Call:
    """``k8s.<model>(...)`` for a value checked by ``_model``, nested objects included."""
    kinds = {attr: kind for attr, kind, _ in _MODELS[model].values()}
    return _k8s(model, **{attr: _call_value(kinds[attr], value[attr]) for attr in sorted(value)})


def _call_value(kind: str, value: Any) -> Any:
    if kind.startswith("["):
        return [_call_value(kind[1:-1], v) for v in value]
    if kind in _MODELS:
        return model_call(kind, value)
    return value


def env_calls(env: Mapping[str, str]) -> list[Call]:
    return [_k8s("V1EnvVar", name=name, value=env[name]) for name in sorted(env)]


def _secret_call(secret: Mapping[str, Any]) -> Call:
    kwargs = (("key", secret["key"]),) if secret["key"] is not None else ()
    return Call(SECRET, (secret["deploy_type"], secret["deploy_target"], secret["secret"]), kwargs)


def pod_operator_kwargs(pod: Mapping[str, Any], env: Mapping[str, str]) -> list[tuple[str, Any]]:
    """KubernetesPodOperator keyword arguments for merged settings (not image/cmds/arguments).

    ``env`` is the dbt environment from config, under the pod's own ``env_vars``.
    """
    kwargs: list[tuple[str, Any]] = []
    if pod.get("namespace"):
        kwargs.append(("namespace", pod["namespace"]))
    if pod.get("service_account_name"):
        kwargs.append(("service_account_name", pod["service_account_name"]))
    if pod.get("image_pull_policy"):
        kwargs.append(("image_pull_policy", pod["image_pull_policy"]))
    if pod.get("image_pull_secrets"):
        kwargs.append(
            (
                "image_pull_secrets",
                [_k8s("V1LocalObjectReference", name=n) for n in pod["image_pull_secrets"]],
            )
        )
    resources = resources_call(pod.get("container_resources") or {})
    if resources is not None:
        kwargs.append(("container_resources", resources))
    if pod.get("node_selector"):
        kwargs.append(("node_selector", dict(pod["node_selector"])))
    if pod.get("tolerations"):
        kwargs.append(("tolerations", [model_call("V1Toleration", t) for t in pod["tolerations"]]))
    if pod.get("affinity"):
        kwargs.append(("affinity", model_call("V1Affinity", pod["affinity"])))
    all_env = {**env, **(pod.get("env_vars") or {})}
    if all_env:
        kwargs.append(("env_vars", env_calls(all_env)))
    if pod.get("secrets"):
        kwargs.append(("secrets", [_secret_call(s) for s in pod["secrets"]]))
    if pod.get("volumes"):
        kwargs.append(("volumes", [model_call("V1Volume", v) for v in pod["volumes"]]))
    if pod.get("volume_mounts"):
        kwargs.append(
            ("volume_mounts", [model_call("V1VolumeMount", m) for m in pod["volume_mounts"]])
        )
    if pod.get("labels"):
        kwargs.append(("labels", dict(pod["labels"])))
    if pod.get("annotations"):
        kwargs.append(("annotations", dict(pod["annotations"])))
    return kwargs


def pod_override(pod: Mapping[str, Any]) -> Call:
    """``k8s.V1Pod`` for ``executor_config["pod_override"]``: the worker container is ``base``.

    Secrets become what the provider's ``Secret.attach_to_pod`` would add (env from a secret
    key, env from a whole secret, or a read-only secret volume), with stable volume names.
    ``namespace`` is left to the executor, whose watcher only sees its own namespace(s).
    """
    env = env_calls(pod.get("env_vars") or {})
    env_from: list[Call] = []
    volumes = [model_call("V1Volume", v) for v in pod.get("volumes") or ()]
    mounts = [model_call("V1VolumeMount", m) for m in pod.get("volume_mounts") or ()]
    for index, secret in enumerate(pod.get("secrets") or ()):
        if secret["deploy_type"] == "env" and secret["key"] is not None:
            selector = _k8s("V1SecretKeySelector", name=secret["secret"], key=secret["key"])
            env.append(
                _k8s(
                    "V1EnvVar",
                    name=secret["deploy_target"],
                    value_from=_k8s("V1EnvVarSource", secret_key_ref=selector),
                )
            )
        elif secret["deploy_type"] == "env":
            env_from.append(
                _k8s("V1EnvFromSource", secret_ref=_k8s("V1SecretEnvSource", name=secret["secret"]))
            )
        else:
            name = f"dagfactory-secret-{index}"
            volumes.append(
                _k8s(
                    "V1Volume",
                    name=name,
                    secret=_k8s("V1SecretVolumeSource", secret_name=secret["secret"]),
                )
            )
            mounts.append(
                _k8s("V1VolumeMount", name=name, mount_path=secret["deploy_target"], read_only=True)
            )
    container = _k8s(
        "V1Container",
        name="base",
        image=pod.get("image"),
        image_pull_policy=pod.get("image_pull_policy"),
        resources=resources_call(pod.get("container_resources") or {}),
        env=env or None,
        env_from=env_from or None,
        volume_mounts=mounts or None,
    )
    spec = _k8s(
        "V1PodSpec",
        containers=[container],
        node_selector=dict(pod["node_selector"]) if pod.get("node_selector") else None,
        tolerations=[model_call("V1Toleration", t) for t in pod.get("tolerations") or ()] or None,
        affinity=model_call("V1Affinity", pod["affinity"]) if pod.get("affinity") else None,
        volumes=volumes or None,
        image_pull_secrets=[
            _k8s("V1LocalObjectReference", name=n) for n in pod.get("image_pull_secrets") or ()
        ]
        or None,
        service_account_name=pod.get("service_account_name"),
    )
    metadata = _k8s(
        "V1ObjectMeta",
        labels=dict(pod["labels"]) if pod.get("labels") else None,
        annotations=dict(pod["annotations"]) if pod.get("annotations") else None,
    )
    return _k8s("V1Pod", metadata=metadata, spec=spec)
