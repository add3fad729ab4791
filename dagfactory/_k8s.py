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
from decimal import Decimal
from typing import Any

from dagfactory._pysrc import Call, jinja_escape

__all__ = [
    "POD_KEYS",
    "SIZE_KEYS",
    "PodSettingsError",
    "check_merged",
    "label_value",
    "merge_layers",
    "normalize_pod",
    "pod_operator_kwargs",
    "pod_override",
    "qualified_name",
    "quantity",
    "quantity_value",
]

#: the generated file imports ``from kubernetes.client import models as k8s``
K8S = "k8s"
#: the provider's Secret helper (``airflow.providers.cncf.kubernetes.secret.Secret``)
SECRET = "Secret"


class PodSettingsError(ValueError):
    """A bad pod setting; ``routing`` turns it into a ConfigError or RoutingError."""

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

# Volume sources dagfactory knows: Kubernetes YAML key -> (model attribute, model class,
# {YAML field: (attribute, kind)}). Kinds: name (DNS subdomain), str, bool, int, quantity, items.
_VOLUME_SOURCES: dict[str, tuple[str, str, dict[str, tuple[str, str]]]] = {
    "persistentVolumeClaim": (
        "persistent_volume_claim",
        "V1PersistentVolumeClaimVolumeSource",
        {"claimName": ("claim_name", "name"), "readOnly": ("read_only", "bool")},
    ),
    "configMap": (
        "config_map",
        "V1ConfigMapVolumeSource",
        {
            "name": ("name", "name"),
            "defaultMode": ("default_mode", "int"),
            "optional": ("optional", "bool"),
            "items": ("items", "items"),
        },
    ),
    "secret": (
        "secret",
        "V1SecretVolumeSource",
        {
            "secretName": ("secret_name", "name"),
            "defaultMode": ("default_mode", "int"),
            "optional": ("optional", "bool"),
            "items": ("items", "items"),
        },
    ),
    "emptyDir": (
        "empty_dir",
        "V1EmptyDirVolumeSource",
        {"medium": ("medium", "str"), "sizeLimit": ("size_limit", "quantity")},
    ),
    "hostPath": (
        "host_path",
        "V1HostPathVolumeSource",
        {"path": ("path", "str"), "type": ("type", "str")},
    ),
}
_MOUNT_FIELDS = {
    "name": ("name", "str"),
    "mountPath": ("mount_path", "str"),
    "subPath": ("sub_path", "str"),
    "readOnly": ("read_only", "bool"),
}
_TOLERATION_FIELDS = {
    "key": ("key", "str"),
    "operator": ("operator", "str"),
    "value": ("value", "str"),
    "effect": ("effect", "str"),
    "tolerationSeconds": ("toleration_seconds", "int"),
}
_SECRET_FIELDS = ("deploy_type", "deploy_target", "secret", "key")


# -- small checks -----------------------------------------------------------------------------


def _unknown(value: Mapping[str, Any], valid: tuple[str, ...] | list[str], key: str) -> None:
    import difflib

    for name in value:
        if name not in valid:
            close = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PodSettingsError(
                f"unknown key{hint} (valid keys here: {', '.join(sorted(valid))})",
                f"{key}.{name}" if key else str(name),
            )


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PodSettingsError(f"expected a mapping, got {_describe(value)}", key)
    for name in value:
        if not isinstance(name, str):
            raise PodSettingsError(f"keys must be strings, got {name!r}", key)
    return value


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise PodSettingsError(f"expected a list, got {_describe(value)}", key)
    return value


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _text(value: Any, key: str) -> str:
    """A scalar as text: YAML turns ``4`` or ``true`` into numbers and booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise PodSettingsError(f"expected a string, got {_describe(value)}", key)


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise PodSettingsError(f"expected a string, got {_describe(value)}", key)
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise PodSettingsError(f"expected true or false, got {_describe(value)}", key)
    return value


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PodSettingsError(f"expected a non-negative integer, got {_describe(value)}", key)
    return value


def _dns_label(value: Any, key: str, what: str) -> str:
    value = _string(value, key)
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise PodSettingsError(
            f"{value!r} is not a valid {what}: at most 63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit",
            key,
        )
    return value


def _dns_subdomain(value: Any, key: str, what: str) -> str:
    value = _string(value, key)
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
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
    ok = bool(name) and len(name) <= 63 and bool(_NAME_PART.match(name))
    if slash:
        ok = ok and len(prefix) <= 253 and bool(_DNS_SUBDOMAIN.match(prefix))
    if not ok:
        raise PodSettingsError(
            f"{value!r} is not a valid {what}: an optional DNS prefix and '/', then at most 63 "
            "letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
            key,
        )
    return value


def label_value(value: Any, key: str) -> str:
    text = _text(value, key)
    if text and (len(text) > 63 or not _NAME_PART.match(text)):
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
            f"expected a quantity such as '500m' or '1Gi', got {_describe(value)}", key
        )
    text = str(value)
    if not _QUANTITY.match(text):
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


def _fields(
    raw: Any, spec: Mapping[str, tuple[str, str]], key: str, escape: bool
) -> dict[str, Any]:
    """A k8s-YAML mapping with known camelCase fields -> {attribute: value}."""
    raw = _mapping(raw, key)
    _unknown(raw, list(spec), key)
    out: dict[str, Any] = {}
    for name, value in raw.items():
        attr, kind = spec[name]
        sub = f"{key}.{name}"
        if value is None:
            continue
        if kind == "str":
            out[attr] = _string(value, sub)
        elif kind == "name":
            out[attr] = _dns_subdomain(value, sub, "name")
        elif kind == "bool":
            out[attr] = _bool(value, sub)
        elif kind == "int":
            out[attr] = _int(value, sub)
        elif kind == "quantity":
            out[attr] = quantity(value, sub)
        elif kind == "items":
            items = []
            for i, item in enumerate(_list(value, sub)):
                items.append(
                    _fields(
                        item,
                        {"key": ("key", "str"), "path": ("path", "str"), "mode": ("mode", "int")},
                        f"{sub}[{i}]",
                        escape,
                    )
                )
            out[attr] = items
    return out


def _resources(raw: Any, key: str) -> dict[str, dict[str, str]]:
    raw = _mapping(raw, key)
    _unknown(raw, ("limits", "requests"), key)
    out: dict[str, dict[str, str]] = {}
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


def _labels(raw: Any, key: str) -> dict[str, str]:
    return {
        qualified_name(name, f"{key}.{name}"): None
        if value is None
        else label_value(value, f"{key}.{name}")
        for name, value in _mapping(raw, key).items()
    }


def _toleration(raw: Any, key: str) -> dict[str, Any]:
    out = _fields(raw, _TOLERATION_FIELDS, key, False)
    if out.get("key"):
        qualified_name(out["key"], f"{key}.key", "toleration key")
    if "operator" in out:
        _choice(out["operator"], TOLERATION_OPERATORS, f"{key}.operator")
    if "effect" in out:
        _choice(out["effect"], TOLERATION_EFFECTS, f"{key}.effect")
    if "value" in out:
        if out.get("operator") == "Exists" and out["value"]:
            raise PodSettingsError(
                "a toleration with operator Exists takes no value", f"{key}.value"
            )
        label_value(out["value"], f"{key}.value")
    return out


def _volume(raw: Any, key: str, escape: bool) -> dict[str, Any]:
    raw = _mapping(raw, key)
    _unknown(raw, ["name", *_VOLUME_SOURCES], key)
    if "name" not in raw:
        raise PodSettingsError("a volume needs a name", f"{key}.name")
    name = _dns_label(raw["name"], f"{key}.name", "volume name")
    sources = [s for s in _VOLUME_SOURCES if s in raw]
    if len(sources) != 1:
        raise PodSettingsError(
            f"a volume needs exactly one source out of {', '.join(_VOLUME_SOURCES)}", key
        )
    (source,) = sources
    attr, cls, spec = _VOLUME_SOURCES[source]
    return {
        "name": name,
        "source": attr,
        "class": cls,
        "args": _fields(raw[source] or {}, spec, f"{key}.{source}", escape),
    }


def _mount(raw: Any, key: str, escape: bool) -> dict[str, Any]:
    out = _fields(raw, _MOUNT_FIELDS, key, escape)
    for required in ("name", "mountPath"):
        if _MOUNT_FIELDS[required][0] not in out:
            raise PodSettingsError(f"a volume mount needs {required}", f"{key}.{required}")
    _dns_label(out["name"], f"{key}.name", "volume name")
    if not out["mount_path"].startswith("/"):
        raise PodSettingsError("mountPath must be an absolute path", f"{key}.mountPath")
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
        if not _SECRET_KEY.match(out["key"]):
            raise PodSettingsError(f"{out['key']!r} is not a valid secret key", f"{key}.key")
    target = raw.get("deploy_target")
    if target is not None:
        target = _string(target, f"{key}.deploy_target")
        if deploy_type == "env" and not _ENV_NAME.match(target):
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
            if len(image) > 512 or not _IMAGE.match(image):
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
                if not _ENV_NAME.match(k):
                    raise PodSettingsError(
                        f"{k!r} is not a valid environment variable name", f"{sub}.{k}"
                    )
                env[k] = None if v is None else _escaped(_text(v, f"{sub}.{k}"), escape)
            out[name] = env
        elif name == "tolerations":
            out[name] = [_toleration(v, f"{sub}[{i}]") for i, v in enumerate(_list(value, sub))]
        elif name == "affinity":
            # Passed through in Kubernetes' own spelling; the operator and the executor's
            # pod deserialiser turn it into V1Affinity. Only its shape is checked here.
            _unknown(_mapping(value, sub), ("nodeAffinity", "podAffinity", "podAntiAffinity"), sub)
            out[name] = _plain(value, sub)
        elif name == "secrets":
            out[name] = [_secret(v, f"{sub}[{i}]") for i, v in enumerate(_list(value, sub))]
        elif name == "volumes":
            out[name] = [_volume(v, f"{sub}[{i}]", escape) for i, v in enumerate(_list(value, sub))]
        elif name == "volume_mounts":
            out[name] = [_mount(v, f"{sub}[{i}]", escape) for i, v in enumerate(_list(value, sub))]
    return out


def _escaped(text: str, escape: bool) -> str:
    return jinja_escape(text) if escape else text


def _plain(value: Any, key: str) -> Any:
    """Plain YAML data only (str/int/float/bool/None, lists, string-keyed mappings)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list):
        return [_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: _plain(v, f"{key}.{k}") for k, v in _mapping(value, key).items()}
    raise PodSettingsError(f"unsupported value {_describe(value)}", key)


_SUFFIX = {
    **{s: 1024**i for i, s in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: 1000**i for i, s in enumerate(("", "k", "M", "G", "T", "P", "E"))},
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
}


def quantity_value(text: str) -> Decimal:
    """The number a valid quantity stands for (``500m`` -> 0.5, ``1Ki`` -> 1024)."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(text)
    number, suffix = Decimal(match.group(1)), match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIX[suffix]


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


def _toleration_call(toleration: Mapping[str, Any]) -> Call:
    return _k8s("V1Toleration", **{k: toleration[k] for k in sorted(toleration)})


def _volume_call(volume: Mapping[str, Any]) -> Call:
    args = dict(volume["args"])
    if "items" in args:
        args["items"] = [_k8s("V1KeyToPath", **item) for item in args["items"]]
    source = _k8s(volume["class"], **{k: args[k] for k in sorted(args)})
    return _k8s("V1Volume", name=volume["name"], **{volume["source"]: source})


def _mount_call(mount: Mapping[str, Any]) -> Call:
    return _k8s("V1VolumeMount", **{k: mount[k] for k in sorted(mount)})


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
        kwargs.append(("tolerations", [_toleration_call(t) for t in pod["tolerations"]]))
    if pod.get("affinity"):
        kwargs.append(("affinity", dict(pod["affinity"])))
    all_env = {**env, **(pod.get("env_vars") or {})}
    if all_env:
        kwargs.append(("env_vars", env_calls(all_env)))
    if pod.get("secrets"):
        kwargs.append(("secrets", [_secret_call(s) for s in pod["secrets"]]))
    if pod.get("volumes"):
        kwargs.append(("volumes", [_volume_call(v) for v in pod["volumes"]]))
    if pod.get("volume_mounts"):
        kwargs.append(("volume_mounts", [_mount_call(m) for m in pod["volume_mounts"]]))
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
    volumes = [_volume_call(v) for v in pod.get("volumes") or ()]
    mounts = [_mount_call(m) for m in pod.get("volume_mounts") or ()]
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
        tolerations=[_toleration_call(t) for t in pod.get("tolerations") or ()] or None,
        affinity=dict(pod["affinity"]) if pod.get("affinity") else None,
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
