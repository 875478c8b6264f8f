"""strongroom.crypto: master key loading, data keys, sealing, blind tokens.

Known answers live in tests/data/crypto_vectors.json: any change of a format or a derivation fails
here, on purpose. Regenerate them only with a new format version.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto.blind import Tokenizer
from strongroom.crypto.keys import DataKeys, KeyProblem, MasterKey, load_master_key
from strongroom.crypto.seal import SealError, seal, unseal

VECTORS = json.loads((Path(__file__).parent / "data" / "crypto_vectors.json").read_text(encoding="utf-8"))
MASTER = MasterKey(bytes.fromhex(VECTORS["master_key"]))
DATA_KEY_1 = bytes.fromhex(VECTORS["data_keys"]["1"])
DATA_KEY_2 = bytes.fromhex(VECTORS["data_keys"]["2"])


def vector_keys() -> DataKeys:
    """The vectors' index keys with both versions (version 2 seals)."""
    return DataKeys.open(MASTER, VECTORS["blob_v1_v2"].encode())


def keys_at(version: int) -> DataKeys:
    return DataKeys.open(MASTER, VECTORS["blob_v1" if version == 1 else "blob_v1_v2"].encode())


# ---------------------------------------------------------------------------------------------
# Known-answer vectors


def test_vector_master_key_check_and_file() -> None:
    assert MASTER.check.hex() == VECTORS["master_check"]
    assert MASTER.key_file_text() == VECTORS["master_key_file"]


def test_vector_wrapped_blobs() -> None:
    keys, blob = DataKeys.create(MASTER, _data_key=DATA_KEY_1)
    assert blob.decode() == VECTORS["blob_v1"]
    assert keys.add_version(MASTER, _data_key=DATA_KEY_2).decode() == VECTORS["blob_v1_v2"]
    assert (keys.versions, keys.current_version) == ((1, 2), 2)


def test_vector_derived_keys() -> None:
    keys = vector_keys()
    for version, expected in VECTORS["sealing_keys"].items():
        assert keys.sealing_key(int(version)).hex() == expected
    for vector in VECTORS["token_keys"]:
        assert keys.token_key(vector["field"], vector["variant"]).hex() == vector["key"]


@pytest.mark.parametrize("vector", VECTORS["seals"], ids=lambda v: v["comment"])
def test_vector_seals(vector: dict[str, object]) -> None:
    keys = keys_at(int(vector["key_version"]))  # type: ignore[call-overload]
    plaintext = bytes.fromhex(str(vector["plaintext"]))
    context = {"index_uuid": str(vector["index_uuid"]), "doc_id": str(vector["doc_id"])}
    sealed = seal(keys, plaintext, **context, _nonce=bytes.fromhex(str(vector["nonce"])))
    assert sealed.hex() == vector["sealed"]
    assert unseal(keys, sealed, **context) == plaintext


@pytest.mark.parametrize("vector", VECTORS["seals"], ids=lambda v: v["comment"])
def test_vector_seals_follow_the_documented_format(vector: dict[str, str]) -> None:
    """Opened with plain AES-GCM and the AAD layout written in seal.py's docstring."""
    sealed = bytes.fromhex(vector["sealed"])
    format_version, key_version = struct.unpack(">BI", sealed[:5])
    assert (format_version, sealed[5:17].hex()) == (1, vector["nonce"])
    uuid, doc = vector["index_uuid"].encode(), vector["doc_id"].encode()
    aad = (b"strongroom seal\x00" + sealed[:5] + struct.pack(">I", len(uuid)) + uuid
           + struct.pack(">I", len(doc)) + doc)
    key = bytes.fromhex(VECTORS["sealing_keys"][str(key_version)])
    padded = AESGCM(key).decrypt(sealed[5:17], sealed[17:], aad)
    plaintext = bytes.fromhex(vector["plaintext"])
    assert len(padded) % 32 == 0 and padded == plaintext + b"\x80" + bytes(len(padded) - len(plaintext) - 1)


@pytest.mark.parametrize("vector", VECTORS["tokens"], ids=lambda v: v["comment"])
def test_vector_tokens(vector: dict[str, object]) -> None:
    tokenizer = Tokenizer(vector_keys().token_key(str(vector["field"]), str(vector["variant"])))
    value = vector["value"]
    match vector["kind"]:
        case "exact":
            assert [tokenizer.exact(str(value))] == vector["tokens"]
        case "terms":
            assert tokenizer.terms(list(value)) == vector["tokens"]  # type: ignore[call-overload]
        case "prefixes":
            assert tokenizer.prefixes(str(value), tuple(vector["lengths"])) == vector["tokens"]  # type: ignore[arg-type]
        case "date_parts":
            assert tokenizer.date_parts(str(value)) == vector["tokens"]
        case other:
            pytest.fail(f"unknown vector kind {other}")


# ---------------------------------------------------------------------------------------------
# Sealing


def fresh_keys() -> DataKeys:
    return DataKeys.create(MasterKey.generate())[0]


def test_round_trip_and_fresh_nonces() -> None:
    keys = fresh_keys()
    first = seal(keys, b'{"name":"Li Na"}', index_uuid="u1", doc_id="d1")
    second = seal(keys, b'{"name":"Li Na"}', index_uuid="u1", doc_id="d1")
    assert first != second  # A random nonce per seal: equal sources do not look equal at rest.
    assert unseal(keys, first, index_uuid="u1", doc_id="d1") == b'{"name":"Li Na"}'
    assert unseal(keys, second, index_uuid="u1", doc_id="d1") == b'{"name":"Li Na"}'


def test_tampering_any_byte_is_refused() -> None:
    keys = fresh_keys()
    sealed = seal(keys, b"patient record 0042", index_uuid="u1", doc_id="d1")
    for position in range(len(sealed)):
        for flip in (0x01, 0x80):
            altered = bytearray(sealed)
            altered[position] ^= flip
            with pytest.raises(SealError):
                unseal(keys, bytes(altered), index_uuid="u1", doc_id="d1")
    for cut in (sealed[:-1], sealed[:17], b"", sealed + b"\x00"):
        with pytest.raises(SealError):
            unseal(keys, cut, index_uuid="u1", doc_id="d1")


def test_sealed_source_opens_only_for_its_document_and_index() -> None:
    keys = fresh_keys()
    sealed = seal(keys, b"source", index_uuid="u1", doc_id="d1")
    for context in ({"index_uuid": "u1", "doc_id": "d2"}, {"index_uuid": "u2", "doc_id": "d1"},
                    {"index_uuid": "u1d", "doc_id": "1"}, {"index_uuid": "u", "doc_id": "1d1"}):
        with pytest.raises(SealError) as refused:
            unseal(keys, sealed, **context)
        assert "source" not in str(refused.value)


def test_another_index_key_does_not_open() -> None:
    sealed = seal(fresh_keys(), b"source", index_uuid="u1", doc_id="d1")
    with pytest.raises(SealError):
        unseal(fresh_keys(), sealed, index_uuid="u1", doc_id="d1")


def test_padding_hides_length_within_a_block() -> None:
    keys = fresh_keys()
    sizes = {n: len(seal(keys, b"a" * n, index_uuid="u", doc_id="d")) for n in range(97)}
    overhead = 1 + 4 + 12 + 16
    for n, size in sizes.items():
        assert size - overhead == (n // 32 + 1) * 32  # Always at least one padding byte.
    assert len({sizes[n] for n in range(32)}) == 1
    assert len({sizes[n] for n in range(32, 64)}) == 1
    for n in (0, 1, 31, 32, 33, 95, 96):
        assert unseal(keys, seal(keys, b"\x00" * n, index_uuid="u", doc_id="d"),
                      index_uuid="u", doc_id="d") == b"\x00" * n  # Trailing zeros survive unpadding.


def test_rotation_keeps_old_seals_readable_and_seals_with_the_new_version() -> None:
    master = MasterKey.generate()
    keys, blob = DataKeys.create(master)
    old = seal(keys, b"before rotation", index_uuid="u", doc_id="d")
    token_before = keys.token_key("name", "exact")
    new_blob = keys.add_version(master)
    reopened = DataKeys.open(master, new_blob)
    new = seal(reopened, b"after rotation", index_uuid="u", doc_id="d")
    assert (old[1:5], new[1:5]) == ((1).to_bytes(4, "big"), (2).to_bytes(4, "big"))
    assert unseal(reopened, old, index_uuid="u", doc_id="d") == b"before rotation"
    assert unseal(reopened, new, index_uuid="u", doc_id="d") == b"after rotation"
    assert reopened.sealing_key(1) != reopened.sealing_key(2)
    assert reopened.token_key("name", "exact") == token_before  # Tokens never change with rotation.
    with pytest.raises(SealError):  # Keys from before the rotation do not know version 2.
        unseal(DataKeys.open(master, blob), new, index_uuid="u", doc_id="d")


PROPERTY_KEYS = vector_keys()


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=300), index_uuid=st.text(min_size=1, max_size=20),
       doc_id=st.text(min_size=1, max_size=40))
def test_unseal_inverts_seal(plaintext: bytes, index_uuid: str, doc_id: str) -> None:
    sealed = seal(PROPERTY_KEYS, plaintext, index_uuid=index_uuid, doc_id=doc_id)
    assert unseal(PROPERTY_KEYS, sealed, index_uuid=index_uuid, doc_id=doc_id) == plaintext



# ---------------------------------------------------------------------------------------------
# Data keys


def test_wrong_master_key_is_refused() -> None:
    _, blob = DataKeys.create(MASTER)
    with pytest.raises(KeyProblem, match="the master key does not match this index's keys"):
        DataKeys.open(MasterKey.generate(), blob)
    keys = DataKeys.open(MASTER, blob)
    with pytest.raises(KeyProblem, match="does not match"):
        keys.add_version(MasterKey.generate())


def test_damaged_or_malformed_blobs_are_refused() -> None:
    doc = json.loads(VECTORS["blob_v1"])
    wrapped = bytearray(base64.b64decode(doc["versions"][0]["wrapped"]))
    wrapped[3] ^= 1
    doc["versions"][0]["wrapped"] = base64.b64encode(wrapped).decode()
    with pytest.raises(KeyProblem, match="damaged"):
        DataKeys.open(MASTER, json.dumps(doc).encode())
    for bad in (b"", b"[]", b"{}", b"not json", VECTORS["blob_v1"].replace('"version":1', '"version":2').encode(),
                VECTORS["blob_v1"].replace("v1", "v9").encode()):
        with pytest.raises(KeyProblem, match="malformed"):
            DataKeys.open(MASTER, bad)


def test_token_keys_are_separate_per_field_and_variant_and_from_sealing() -> None:
    keys = vector_keys()
    derived = [keys.token_key(f, v) for f in ("name", "phone", "name.raw") for v in ("exact", "token", "prefix")]
    derived += [keys.sealing_key(1), keys.sealing_key(2), DATA_KEY_1, DATA_KEY_2]
    assert len(set(derived)) == len(derived)
    with pytest.raises(ValueError):
        keys.token_key("a", "b|c")  # Would share an HKDF info string with field "a|b", variant "c".


def test_reprs_hide_key_bytes() -> None:
    keys = vector_keys()
    shown = repr(MASTER) + repr(keys) + repr(Tokenizer(keys.token_key("name", "exact")))
    for secret in (bytes.fromhex(VECTORS["master_key"]), DATA_KEY_1, DATA_KEY_2):
        assert secret.hex() not in shown and base64.b64encode(secret).decode() not in shown


# ---------------------------------------------------------------------------------------------
# Master key loading

KEY = bytes(range(100, 132))
KEY_B64 = base64.b64encode(KEY).decode()


def assert_no_key_bytes(message: str) -> None:
    for secret in (KEY_B64, KEY_B64.rstrip("="), KEY.hex(), KEY.hex().upper()):
        assert secret not in message


def write_key(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    for name in ("config", "data", "keys"):
        (tmp_path / name).mkdir()
    return {"config_dir": tmp_path / "config", "data_dir": tmp_path / "data", "keys": tmp_path / "keys"}


def load(dirs: dict[str, Path], *, key_file: Path | None = None, env_value: str | None = None,
         generate: bool = False) -> tuple[MasterKey, str | None]:
    return load_master_key(key_file=key_file, env_value=env_value, config_dir=dirs["config_dir"],
                           data_dir=dirs["data_dir"], generate=generate)


def test_key_file_is_loaded(dirs: dict[str, Path]) -> None:
    path = write_key(dirs["keys"] / "master.key", MasterKey(KEY).key_file_text())
    master, warning = load(dirs, key_file=path)
    assert (master.check, warning) == (MasterKey(KEY).check, None)
    link = dirs["keys"] / "link.key"  # A symlink to a good file outside the data dir is followed
    link.symlink_to(path)              # (Kubernetes mounts secrets that way).
    assert load(dirs, key_file=link)[0].check == MasterKey(KEY).check


GOOD = MasterKey(KEY).key_file_text()
BAD_FILES = {
    "truncated": (GOOD[: len(GOOD) // 2], 0o600, "truncated or malformed"),
    "no check line": ("\n".join(GOOD.splitlines()[:2]) + "\n", 0o600, "truncated or malformed"),
    "short key": (GOOD.replace(KEY_B64, base64.b64encode(KEY[:31]).decode()), 0o600, "truncated or malformed"),
    "bad header": (GOOD.replace("strongroom-master-key v1", "strongroom-master-key v0"), 0o600,
                   "not a master key file"),
    "bare base64": (KEY_B64 + "\n", 0o600, "not a master key file"),
    "empty": ("", 0o600, "not a master key file"),
    "wrong check": (GOOD.replace(MasterKey(KEY).check.hex(), "00000000"), 0o600, "damaged"),
    "group-readable": (GOOD, 0o640, "group or others"),
    "world-readable": (GOOD, 0o604, "group or others"),
    "group-writable": (GOOD, 0o620, "group or others"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=str)
def test_bad_key_files_are_refused(dirs: dict[str, Path], case: str) -> None:
    text, mode, reason = BAD_FILES[case]
    path = write_key(dirs["keys"] / "master.key", text, mode)
    with pytest.raises(KeyProblem) as refused:
        load(dirs, key_file=path, generate=True)
    assert reason in str(refused.value) and str(path) in str(refused.value)
    assert_no_key_bytes(str(refused.value))


def test_missing_key_file_is_refused(dirs: dict[str, Path]) -> None:
    with pytest.raises(KeyProblem, match="does not exist"):
        load(dirs, key_file=dirs["keys"] / "absent.key", generate=True)  # Never generated instead.
    assert not (dirs["config_dir"] / "master.key").exists()
    dangling = dirs["keys"] / "dangling.key"
    dangling.symlink_to(dirs["keys"] / "absent.key")
    with pytest.raises(KeyProblem, match="does not exist"):
        load(dirs, key_file=dangling)


def test_key_file_inside_the_data_dir_is_refused(dirs: dict[str, Path]) -> None:
    (dirs["data_dir"] / "sub").mkdir()
    inside = write_key(dirs["data_dir"] / "sub" / "master.key", GOOD)
    with pytest.raises(KeyProblem, match="inside the data directory") as refused:
        load(dirs, key_file=inside)
    assert_no_key_bytes(str(refused.value))
    # Reached through a symlink outside, or by a path that only resolves into the data dir.
    link = dirs["keys"] / "innocent.key"
    link.symlink_to(inside)
    with pytest.raises(KeyProblem, match="inside the data directory"):
        load(dirs, key_file=link)
    with pytest.raises(KeyProblem, match="inside the data directory"):
        load(dirs, key_file=dirs["keys"] / ".." / "data" / "sub" / "master.key")
    data_link = dirs["keys"] / "data-link"  # The data dir given through a symlink is resolved too.
    data_link.symlink_to(dirs["data_dir"])
    with pytest.raises(KeyProblem, match="inside the data directory"):
        load_master_key(key_file=inside, env_value=None, config_dir=dirs["config_dir"], data_dir=data_link,
                        generate=False)


def test_symlink_to_a_readable_file_is_refused(dirs: dict[str, Path]) -> None:
    target = write_key(dirs["keys"] / "shared.key", GOOD, 0o644)
    link = dirs["keys"] / "master.key"
    link.symlink_to(target)
    with pytest.raises(KeyProblem, match="group or others") as refused:
        load(dirs, key_file=link)
    assert_no_key_bytes(str(refused.value))


def test_key_file_that_is_a_directory_is_refused(dirs: dict[str, Path]) -> None:
    with pytest.raises(KeyProblem, match="not a regular file"):
        load(dirs, key_file=dirs["keys"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_file_is_refused(dirs: dict[str, Path]) -> None:
    path = write_key(dirs["keys"] / "master.key", GOOD, 0o000)
    with pytest.raises(KeyProblem, match="not readable"):
        load(dirs, key_file=path)


def test_env_key(dirs: dict[str, Path]) -> None:
    assert load(dirs, env_value=KEY_B64)[0].check == MasterKey(KEY).check
    assert load(dirs, env_value=f" {KEY_B64}\n")[0].check == MasterKey(KEY).check
    assert load(dirs, env_value="hex:" + KEY.hex())[0].check == MasterKey(KEY).check
    assert load(dirs, env_value="hex:" + KEY.hex())[1] is None


@pytest.mark.parametrize("value", [
    "", "short", KEY_B64[:-4], base64.b64encode(KEY + b"x").decode(), KEY_B64.replace("Z", "*"),
    KEY.hex(), "hex:" + KEY.hex()[:-2], "hex:" + KEY.hex() + "00", "hex:" + KEY.hex()[:-1] + "g", "hex:",
    base64.urlsafe_b64encode(b"\xff" * 32).decode(), "密钥" * 22,
])
def test_bad_env_key_is_refused_without_echo(dirs: dict[str, Path], value: str) -> None:
    with pytest.raises(KeyProblem) as refused:
        load(dirs, env_value=value, generate=True)
    assert str(refused.value) == "STRONGROOM_MASTER_KEY is not 32 bytes of base64"
    assert not (dirs["config_dir"] / "master.key").exists()


def test_env_and_file_together_are_refused(dirs: dict[str, Path]) -> None:
    path = write_key(dirs["keys"] / "master.key", GOOD)
    with pytest.raises(KeyProblem, match="choose one") as refused:
        load(dirs, key_file=path, env_value=KEY_B64)
    assert_no_key_bytes(str(refused.value))


def test_generation_creates_a_private_file_once(dirs: dict[str, Path]) -> None:
    path = dirs["config_dir"] / "master.key"
    with pytest.raises(KeyProblem, match="no master key"):
        load(dirs)
    assert not path.exists()
    old_umask = os.umask(0)  # A lax umask must not make the key readable.
    try:
        master, warning = load(dirs, generate=True)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert warning == f"the master key was generated in {path}; production keeps it on another volume or in a KMS"
    assert path.read_text().startswith("strongroom-master-key v1\n")
    again, warning_again = load(dirs, generate=True)
    assert again.check == master.check and warning_again == warning
    assert [p.name for p in dirs["config_dir"].iterdir()] == ["master.key"]  # No temporary files left.
    _, blob = DataKeys.create(master)
    DataKeys.open(again, blob)  # Same key, not merely the same check.


def test_generation_inside_the_data_dir_is_refused(dirs: dict[str, Path]) -> None:
    with pytest.raises(KeyProblem, match="inside the data directory"):
        load_master_key(key_file=None, env_value=None, config_dir=dirs["data_dir"] / "config",
                        data_dir=dirs["data_dir"], generate=True)
    assert not (dirs["data_dir"] / "config").exists()


def test_generated_key_file_made_readable_is_refused_later(dirs: dict[str, Path]) -> None:
    load(dirs, generate=True)
    os.chmod(dirs["config_dir"] / "master.key", 0o644)
    with pytest.raises(KeyProblem, match="group or others"):
        load(dirs, generate=True)


# ---------------------------------------------------------------------------------------------
# Blind tokens


def tokenizer(field: str = "name", variant: str = "exact") -> Tokenizer:
    return Tokenizer(vector_keys().token_key(field, variant))


def test_tokens_are_deterministic_and_keyword_safe() -> None:
    first, second = tokenizer(), tokenizer()
    assert first.exact("Wang Fang") == second.exact("Wang Fang")
    token = first.exact("Wang Fang")
    assert len(token) == 26 and token == token.lower() and token.isalnum() and "=" not in token
    assert first.exact("Wang Fang") != first.exact("wang fang")  # Exact: case is kept.
    assert first.exact("ｗａｎｇ") == first.exact("wang")  # NFKC.
    assert first.exact("\ud800") == second.exact("\ud800")  # Lone surrogates do not crash.


@given(st.binary(min_size=16, max_size=16))
def test_token_text_is_rfc4648_base32(mac: bytes) -> None:
    from strongroom.crypto.blind import _b32

    assert _b32(mac) == base64.b32encode(mac).decode().lower().rstrip("=")


def test_tokens_are_separate_per_field_and_variant() -> None:
    value = "110101199003074578"
    tokens = {tokenizer(f, v).exact(value) for f in ("id_number", "phone") for v in ("exact", "token")}
    assert len(tokens) == 4


def test_terms_keep_order_and_match_exact_of_the_same_key() -> None:
    t = tokenizer("notes", "token")
    assert t.terms(["chest", "pain", "chest"]) == [t.exact("chest"), t.exact("pain"), t.exact("chest")]
    assert t.terms([]) == []


def test_prefix_and_date_tokens_are_domain_separated() -> None:
    t = tokenizer("phone", "prefix")
    assert t.prefixes("13812345678", (3,)) == t.prefixes("138", (3,)) == t.prefixes("1389", (3,))
    assert t.prefixes("13812345678", (3,)) != [t.exact("138")]
    assert t.prefixes("138", (3, 4)) == t.prefixes("138", (3,))  # Longer than the value: no token.
    assert t.prefixes("ab", (1, 2)) != t.prefixes("ab", (2, 1))  # Order kept.
    assert t.prefixes("１３８", (3,)) == t.prefixes("138", (3,))
    year, month, day = t.date_parts("1990-03-07")
    assert len({year, month, day, t.exact("1990"), t.exact("1990-03"), t.exact("1990-03-07")}) == 6
    assert t.date_parts("1990-12-31")[0] == year and t.date_parts("1990-03-31")[1] == month
    with pytest.raises(ValueError):
        t.prefixes("abc", (0,))


@pytest.mark.parametrize("value", ["1990-02-30", "1990-3-7", "19900307", "1990-03-07T00:00:00Z", "",
                                   "１９９０-03-07", "1990-W10-3"])
def test_bad_dates_are_refused_without_echo(value: str) -> None:
    with pytest.raises(ValueError) as refused:
        tokenizer().date_parts(value)
    assert not value or value not in str(refused.value)
