"""The local store keeps zones as directories and behaves like the S3-shaped port says.

Pinned here: put/stat/open/read round-trip; `list` yields every object under a
string prefix (S3 semantics: ``EXP-1`` also matches ``EXP-10``), in key order,
through nested folders, and never the ``.tmp`` folder (it sits beside the
zones); a put is atomic and leaves no temporary file; copy duplicates content;
delete is idempotent and leaves emptied folders in place (an instrument may be
about to write into them); a put or move whose folder is removed between
making it and the rename (promotion tidies emptied landing folders) makes the
folder again and lands; only regular files are objects (symlinks and FIFOs
are never listed); provision creates the experiment's folder in all four zones and returns
``file://`` URIs; keys with spaces, unicode, ``+`` and ``%`` work; a symlink
that leads out of the zone is refused with `InvalidObjectKey`.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from labmesh_dagster.connectors.store.local import LocalObjectStore
from labmesh_dagster.core.errors import InvalidExperimentId, InvalidObjectKey, ObjectNotFound
from labmesh_dagster.core.keys import ObjectKey, Zone


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "store")


def raw(key: str) -> ObjectKey:
    return ObjectKey(Zone.RAW, key)


def keys(store: LocalObjectStore, zone: Zone = Zone.RAW, prefix: str = "") -> list[str]:
    return [info.key.path for info in store.list(zone, prefix)]


def test_put_then_stat_open_and_read_give_back_the_object(store: LocalObjectStore) -> None:
    key = raw("EXP-1/run1/S1_R1.fastq")

    info = store.put(key, b"@r1\nACGT\n+\nIIII\n")

    assert info.key == key and info.size == 16
    assert store.stat(key) == info
    with store.open(key) as stream:
        assert stream.read() == b"@r1\nACGT\n+\nIIII\n"
    assert store.read_bytes(key) == b"@r1\nACGT\n+\nIIII\n"
    assert store.exists(key)
    assert (store.root / "raw" / "EXP-1" / "run1" / "S1_R1.fastq").is_file()


def test_put_accepts_a_stream_and_sha256_matches_the_content(store: LocalObjectStore) -> None:
    content = os.urandom(3 * 1024 * 1024 + 17)
    store.put(raw("EXP-1/big.bin"), io.BytesIO(content))

    assert store.read_bytes(raw("EXP-1/big.bin")) == content
    assert store.sha256(raw("EXP-1/big.bin")) == hashlib.sha256(content).hexdigest()


def test_rewriting_an_object_changes_its_etag(store: LocalObjectStore) -> None:
    first = store.put(raw("EXP-1/a.txt"), b"one")
    second = store.put(raw("EXP-1/a.txt"), b"two")

    assert first.etag != second.etag
    assert store.read_bytes(raw("EXP-1/a.txt")) == b"two"


def test_missing_objects_and_folders_are_not_found(store: LocalObjectStore) -> None:
    store.put(raw("EXP-1/run/a.txt"), b"x")

    for key in (raw("EXP-1/missing.txt"), raw("EXP-1/run"), raw("EXP-2/a.txt")):
        assert not store.exists(key)
        with pytest.raises(ObjectNotFound):
            store.stat(key)
        with pytest.raises(ObjectNotFound):
            store.open(key)


def test_a_key_below_an_existing_file_is_simply_not_found(store: LocalObjectStore) -> None:
    store.put(raw("EXP-1/a.txt"), b"x")
    below = raw("EXP-1/a.txt/child")

    assert not store.exists(below)
    with pytest.raises(ObjectNotFound):
        store.stat(below)
    with pytest.raises(ObjectNotFound):
        store.open(below)
    store.delete(below)


def test_list_is_in_key_order_through_nested_folders(store: LocalObjectStore) -> None:
    for key in ["EXP-1/z.txt", "EXP-1/a/b/c.txt", "EXP-1/a.txt", "EXP-2/x.txt", "EXP-1/B.txt", "loose.txt"]:
        store.put(raw(key), key.encode())

    assert keys(store) == sorted(
        ["EXP-1/B.txt", "EXP-1/a.txt", "EXP-1/a/b/c.txt", "EXP-1/z.txt", "EXP-2/x.txt", "loose.txt"]
    )
    assert all(info.size == len(info.key.path) for info in store.list(Zone.RAW))


def test_list_filters_by_string_prefix_like_s3(store: LocalObjectStore) -> None:
    for key in ["EXP-1/run/a.txt", "EXP-1/runner.txt", "EXP-1/other.txt", "EXP-10/a.txt", "EXP-2/a.txt"]:
        store.put(raw(key), b"x")

    assert keys(store, prefix="EXP-1/") == ["EXP-1/other.txt", "EXP-1/run/a.txt", "EXP-1/runner.txt"]
    assert keys(store, prefix="EXP-1") == [
        "EXP-1/other.txt",
        "EXP-1/run/a.txt",
        "EXP-1/runner.txt",
        "EXP-10/a.txt",
    ]
    assert keys(store, prefix="EXP-1/run") == ["EXP-1/run/a.txt", "EXP-1/runner.txt"]
    assert keys(store, prefix="EXP-1/run/") == ["EXP-1/run/a.txt"]
    assert keys(store, prefix="EXP-3/") == []


def test_list_keeps_zones_apart_and_an_empty_zone_lists_nothing(store: LocalObjectStore) -> None:
    store.put(ObjectKey(Zone.LANDING, "EXP-1/a.txt"), b"x")

    assert keys(store, Zone.RAW) == []
    assert keys(store, Zone.LANDING) == ["EXP-1/a.txt"]
    assert [info.key.zone for info in store.list(Zone.LANDING)] == [Zone.LANDING]


def test_list_shows_hidden_files_and_never_the_temporary_folder(store: LocalObjectStore) -> None:
    store.put(raw("EXP-1/.hidden"), b"x")
    (store.root / ".tmp").mkdir(exist_ok=True)
    (store.root / ".tmp" / "put-leftover").write_bytes(b"partial")

    assert keys(store) == ["EXP-1/.hidden"]
    assert all(keys(store, zone) == [] for zone in (Zone.LANDING, Zone.PROCESSED, Zone.FINAL))


def test_list_skips_empty_folders(store: LocalObjectStore) -> None:
    store.provision("EXP-1")
    (store.root / "raw" / "EXP-1" / "empty" / "deeper").mkdir(parents=True)

    assert keys(store) == []


def test_put_is_atomic_and_leaves_no_temporary_file(store: LocalObjectStore) -> None:
    store.put(raw("EXP-1/a.txt"), b"x" * 1000)
    store.put(raw("EXP-1/a.txt"), io.BytesIO(b"y" * 1000))

    assert list((store.root / ".tmp").iterdir()) == []


def test_a_failed_put_keeps_the_old_content_and_leaves_no_temporary_file(store: LocalObjectStore) -> None:
    store.put(raw("EXP-1/a.txt"), b"old")

    class BrokenStream(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            raise ConnectionResetError("upload interrupted")

    with pytest.raises(ConnectionResetError):
        store.put(raw("EXP-1/a.txt"), BrokenStream())  # type: ignore[arg-type]

    assert store.read_bytes(raw("EXP-1/a.txt")) == b"old"
    assert list((store.root / ".tmp").iterdir()) == []


def test_copy_duplicates_the_content_into_another_zone(store: LocalObjectStore) -> None:
    source = ObjectKey(Zone.LANDING, "EXP-1/run/a.txt")
    store.put(source, b"data")

    info = store.copy(source, source.in_zone(Zone.RAW))

    assert info.key == raw("EXP-1/run/a.txt") and info.size == 4
    assert store.read_bytes(raw("EXP-1/run/a.txt")) == b"data"
    assert store.read_bytes(source) == b"data"


def test_copying_a_missing_object_is_not_found(store: LocalObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.copy(ObjectKey(Zone.LANDING, "EXP-1/missing"), raw("EXP-1/missing"))


def test_move_renames_the_object_and_keeps_the_folder_it_left(store: LocalObjectStore) -> None:
    source = ObjectKey(Zone.LANDING, "EXP-1/run/lane1/a.txt")
    store.put(source, b"data")
    inode = (store.root / "landing" / "EXP-1" / "run" / "lane1" / "a.txt").stat().st_ino

    info = store.move(source, ObjectKey(Zone.LANDING, "_quarantine/EXP-1/run/lane1/a.txt"))

    assert info.key.path == "_quarantine/EXP-1/run/lane1/a.txt" and info.size == 4
    assert (store.root / "landing" / "_quarantine" / "EXP-1" / "run" / "lane1" / "a.txt").stat().st_ino == inode
    assert not store.exists(source)
    assert keys(store, Zone.LANDING) == ["_quarantine/EXP-1/run/lane1/a.txt"]
    assert (store.root / "landing" / "EXP-1" / "run" / "lane1").is_dir()


def test_moving_a_missing_object_is_not_found(store: LocalObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.move(ObjectKey(Zone.LANDING, "EXP-1/missing"), raw("EXP-1/missing"))
    assert keys(store) == []


def test_delete_is_idempotent(store: LocalObjectStore) -> None:
    store.put(raw("EXP-1/a.txt"), b"x")

    store.delete(raw("EXP-1/a.txt"))
    store.delete(raw("EXP-1/a.txt"))
    store.delete(raw("EXP-9/never/existed.txt"))

    assert not store.exists(raw("EXP-1/a.txt"))


def test_delete_leaves_emptied_folders_for_instruments_still_writing(store: LocalObjectStore) -> None:
    store.put(raw("EXP-1/run/lane1/a.txt"), b"x")

    store.delete(raw("EXP-1/run/lane1/a.txt"))

    assert (store.root / "raw" / "EXP-1" / "run" / "lane1").is_dir()
    assert keys(store) == []


@pytest.mark.parametrize("write", ["put", "put if absent", "move"])
def test_a_write_whose_folder_is_removed_meanwhile_makes_it_again(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    store.put(raw("EXP-1/source.txt"), b"x")
    target = ObjectKey(Zone.LANDING, "EXP-1/run1/a.txt")
    real_replace, real_link = os.replace, os.link
    tidied: list[Path] = []

    def tidied_first(real: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def place(source: Any, destination: Any) -> None:
            folder = Path(destination).parent
            if not tidied and folder.is_dir() and not any(folder.iterdir()):
                os.rmdir(folder)  # the emptied folder is removed just before the rename, once
                tidied.append(folder)
            real(source, destination)

        return place

    monkeypatch.setattr(os, "replace", tidied_first(real_replace))
    monkeypatch.setattr(os, "link", tidied_first(real_link))

    if write == "put":
        store.put(target, b"x")
    elif write == "put if absent":
        store.copy(raw("EXP-1/source.txt"), target, if_absent=True)
    else:
        store.move(raw("EXP-1/source.txt"), target)

    assert tidied and store.read_bytes(target) == b"x"


def test_symlinks_and_fifos_are_not_objects(store: LocalObjectStore, tmp_path: Path) -> None:
    folder = store.root / "landing" / "EXP-1"
    folder.mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("secret")
    (folder / "link.txt").symlink_to(tmp_path / "outside.txt")
    os.mkfifo(folder / "pipe")
    store.put(ObjectKey(Zone.LANDING, "EXP-1/real.txt"), b"x")

    assert keys(store, Zone.LANDING) == ["EXP-1/real.txt"]
    assert not store.exists(ObjectKey(Zone.LANDING, "EXP-1/pipe"))


def test_deleting_a_loose_file_at_the_zone_root_keeps_the_zone(store: LocalObjectStore) -> None:
    store.put(raw("loose.txt"), b"x")

    store.delete(raw("loose.txt"))

    assert (store.root / "raw").is_dir()


def test_provision_creates_the_experiment_folder_in_all_four_zones(store: LocalObjectStore) -> None:
    locations = store.provision("EXP-1")

    assert set(locations) == set(Zone)
    for zone, uri in locations.items():
        folder = store.root / zone.value / "EXP-1"
        assert folder.is_dir()
        assert uri == folder.as_uri() + "/"
        assert uri.startswith("file://") and uri.endswith("/EXP-1/")
        assert store.location(zone, "EXP-1") == uri
    assert store.provision("EXP-1") == locations


def test_provision_refuses_an_invalid_experiment_id(store: LocalObjectStore) -> None:
    with pytest.raises(InvalidExperimentId):
        store.provision("../escape")
    assert not (store.root.parent / "escape").exists()


@pytest.mark.parametrize("name", ["with space.txt", "ünïcödé-実験.txt", "a+b.txt", "100%.txt", "a%20b.txt"])
def test_keys_with_spaces_unicode_plus_and_percent_work(store: LocalObjectStore, name: str) -> None:
    key = raw(f"EXP-1/dir with space/{name}")

    store.put(key, b"x")

    assert store.read_bytes(key) == b"x"
    assert keys(store) == [key.path]
    assert unquote(urlparse(store.uri(key)).path) == str(store.root / "raw" / "EXP-1" / "dir with space" / name)


def test_a_symlink_leading_out_of_the_zone_is_refused(store: LocalObjectStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    store.provision("EXP-1")
    (store.root / "raw" / "EXP-1" / "link").symlink_to(outside, target_is_directory=True)
    escaping = raw("EXP-1/link/secret.txt")

    with pytest.raises(InvalidObjectKey, match="outside its zone"):
        store.stat(escaping)
    with pytest.raises(InvalidObjectKey):
        store.open(escaping)
    with pytest.raises(InvalidObjectKey):
        store.put(raw("EXP-1/link/new.txt"), b"x")
    with pytest.raises(InvalidObjectKey):
        store.delete(escaping)
    with pytest.raises(InvalidObjectKey):
        store.move(escaping, raw("EXP-1/stolen.txt"))
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert not (outside / "new.txt").exists()


def test_a_symlink_into_another_zone_is_refused_too(store: LocalObjectStore) -> None:
    store.put(ObjectKey(Zone.FINAL, "EXP-1/report.pdf"), b"pdf")
    store.provision("EXP-1")
    (store.root / "raw" / "EXP-1" / "final").symlink_to(store.root / "final" / "EXP-1", target_is_directory=True)

    with pytest.raises(InvalidObjectKey):
        store.read_bytes(raw("EXP-1/final/report.pdf"))


def test_an_experiment_folder_symlinked_out_of_the_zone_is_refused(store: LocalObjectStore, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.csv").write_bytes(b"a,b\n")
    (store.root / "raw").mkdir(parents=True, exist_ok=True)
    (store.root / "raw" / "EXP-9").symlink_to(elsewhere, target_is_directory=True)

    with pytest.raises(InvalidObjectKey, match="outside its zone"):
        store.read_bytes(raw("EXP-9/data.csv"))


def test_a_symlink_that_stays_inside_its_zone_is_followed(store: LocalObjectStore) -> None:
    store.put(raw("EXP-1/run1/a.csv"), b"a")
    (store.root / "raw" / "EXP-1" / "latest").symlink_to(
        store.root / "raw" / "EXP-1" / "run1", target_is_directory=True
    )

    assert store.read_bytes(raw("EXP-1/latest/a.csv")) == b"a"


def test_a_zone_that_is_itself_a_symlink_to_another_disk_works(tmp_path: Path) -> None:
    # An operator mounts raw on a bigger disk and links it in: the zone's own link is the store's to follow.
    big_disk = tmp_path / "big-disk" / "raw"
    big_disk.mkdir(parents=True)
    root = tmp_path / "store"
    root.mkdir()
    (root / "raw").symlink_to(big_disk, target_is_directory=True)
    store = LocalObjectStore(root)

    store.put(raw("EXP-1/a.csv"), b"a")

    assert (big_disk / "EXP-1" / "a.csv").read_bytes() == b"a"
    assert [info.key.path for info in store.list(Zone.RAW)] == ["EXP-1/a.csv"]
