"""ksmrepro.realkernel without booting: kernel images, modules, /init, the QEMU command line."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ksmrepro.realkernel import runner as runner_mod
from ksmrepro.realkernel.errors import (
    GuestError,
    GuestTimeoutError,
    KernelImageError,
    ToolMissingError,
)
from ksmrepro.realkernel.initramfs import find_busybox, init_script, is_static_elf
from ksmrepro.realkernel.modules import (
    find_modules_dir,
    kernel_release,
    modinfo,
    resolve_modules,
)
from ksmrepro.realkernel.qemu import BootOutcome, QemuConfig, boot, kvm_usable, qemu_command
from ksmrepro.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]
MERGE = ROOT / "scenarios" / "calibration" / "ksm-merge-identical.yaml"
HUGH = ROOT / "scenarios" / "hugh.yaml"


def fake_bzimage(path: Path, version: str = "6.1.0-56-amd64 (debian-kernel@lists.debian.org)"):
    image = bytearray(0x4000)
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", image, 0x20E, 0x1000 - 0x200)
    image[0x1000:0x1000 + len(version)] = version.encode()
    path.write_bytes(bytes(image))
    return path


def fake_module(modinfo_strings: list[str]) -> bytes:
    """A minimal ELF64 relocatable with .modinfo and .shstrtab sections."""
    info = b"".join(s.encode() + b"\0" for s in modinfo_strings)
    shstr = b"\0.modinfo\0.shstrtab\0"
    info_off = 64
    shstr_off = info_off + len(info)
    shoff = (shstr_off + len(shstr) + 7) & ~7
    header = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 1, 62, 1, 0,
                         0, shoff, 0, 64, 0, 0, 64, 3, 2)
    sections = bytes(64)
    sections += struct.pack("<IIQQQQIIQQ", 1, 1, 2, 0, info_off, len(info), 0, 0, 1, 0)
    sections += struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, shstr_off, len(shstr), 0, 0, 1, 0)
    body = header + info + shstr
    return body + bytes(shoff - len(body)) + sections


def fake_package(root: Path) -> Path:
    """``dpkg-deb -x`` of a kernel package, in miniature."""
    (root / "boot").mkdir(parents=True)
    kernel = fake_bzimage(root / "boot" / "vmlinuz-6.1.0-56-amd64")
    mods = root / "lib" / "modules" / "6.1.0-56-amd64"
    for sub, name, deps in [("drivers/virtio", "virtio", ""),
                            ("drivers/virtio", "virtio_ring", ""),
                            ("drivers/virtio", "virtio_pci", "virtio,virtio_ring,virtio_pci_modern_dev"),
                            ("drivers/virtio", "virtio_pci_modern_dev", ""),
                            ("drivers/block", "virtio_blk", "virtio,virtio_ring")]:
        d = mods / "kernel" / sub
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.ko").write_bytes(fake_module([f"name={name}", f"depends={deps}",
                                                    "vermagic=6.1.0-56-amd64 SMP"]))
    (mods / "modules.builtin").write_text("kernel/mm/zswap.ko\n")
    return kernel


# -- kernel image and modules -----------------------------------------------------------------

def test_kernel_release_from_the_setup_header(tmp_path):
    assert kernel_release(fake_bzimage(tmp_path / "bz")) == "6.1.0-56-amd64"
    (tmp_path / "junk").write_bytes(b"\0" * 1024)
    assert kernel_release(tmp_path / "junk") is None
    assert kernel_release(tmp_path / "absent") is None


def test_modinfo_reads_the_elf_section():
    info = modinfo(fake_module(["license=GPL", "depends=virtio,virtio_ring", "name=virtio_blk"]))
    assert info == {"license": "GPL", "depends": "virtio,virtio_ring", "name": "virtio_blk"}
    with pytest.raises(KernelImageError):
        modinfo(b"not an elf")


def test_modules_found_next_to_boot_and_ordered_by_dependencies(tmp_path):
    kernel = fake_package(tmp_path / "pkg")
    moddir = find_modules_dir(kernel, None, "6.1.0-56-amd64")
    assert moddir == tmp_path / "pkg" / "lib" / "modules" / "6.1.0-56-amd64"
    # --modules may name the package root, lib/modules or the release directory
    for given in (tmp_path / "pkg", tmp_path / "pkg" / "lib" / "modules", moddir):
        assert find_modules_dir(kernel, given, "6.1.0-56-amd64") == moddir
    names = [m.name for m in resolve_modules(moddir, ("virtio_pci", "virtio_blk"))]
    assert names.index("virtio") < names.index("virtio_pci") < names.index("virtio_blk")
    assert names.index("virtio_pci_modern_dev") < names.index("virtio_pci")
    assert len(names) == len(set(names)) == 5


def test_missing_module_and_modules_dir(tmp_path):
    kernel = fake_package(tmp_path / "pkg")
    moddir = find_modules_dir(kernel, None, "6.1.0-56-amd64")
    with pytest.raises(KernelImageError, match="virtio_scsi"):
        resolve_modules(moddir, ("virtio_scsi",))
    assert resolve_modules(moddir, ("zswap",)) == []  # built in
    with pytest.raises(KernelImageError, match="no kernel modules"):
        find_modules_dir(kernel, tmp_path / "empty", "6.1.0-56-amd64")
    assert find_modules_dir(tmp_path / "elsewhere" / "bz", None, "6.1.0-56-amd64") is None


# -- busybox and /init -------------------------------------------------------------------------

def test_static_elf_detection_and_busybox(tmp_path, monkeypatch):
    # an ELF header with one program header: PT_INTERP (dynamic) or PT_LOAD (static)
    head = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 2, 62, 1, 0,
                       64, 0, 0, 64, 56, 1, 0, 0, 0)
    dynamic = tmp_path / "dynamic"
    dynamic.write_bytes(head + struct.pack("<IIQQQQQQ", 3, 4, 0, 0, 0, 0, 0, 0))
    static = tmp_path / "static"
    static.write_bytes(head + struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, 0, 0, 0))
    assert not is_static_elf(dynamic)
    assert is_static_elf(static)
    assert find_busybox(static) == static
    monkeypatch.setenv("KSMREPRO_BUSYBOX", str(static))
    assert find_busybox() == static
    monkeypatch.delenv("KSMREPRO_BUSYBOX")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(ToolMissingError, match="dynamically linked.*busybox-static"):
        find_busybox(search=(dynamic,))
    with pytest.raises(ToolMissingError, match="apt-get install busybox-static"):
        find_busybox(search=())


def test_init_script():
    script = init_script(swap=True, modules=["00-virtio.ko", "01-virtio_blk.ko"])
    assert script.startswith("#!/bin/busybox sh\n")
    assert "insmod /lib/modules/00-virtio.ko" in script
    assert script.index("00-virtio.ko") < script.index("01-virtio_blk.ko")
    assert "mkswap /dev/vda" in script
    assert "swapon /dev/vda" in script
    assert "mount -t cgroup2" in script
    assert "tee /dev/ttyS1" in script
    assert script.rstrip().endswith("poweroff -f")
    assert "mkswap" not in init_script(swap=False, modules=[])


# -- QEMU ---------------------------------------------------------------------------------------

def _config(tmp_path, **kw):
    base = dict(kernel=tmp_path / "bz", initrd=tmp_path / "i.cpio", memory=1 << 30, cpus=2,
                console_log=tmp_path / "console.log", output_log=tmp_path / "output.log")
    return QemuConfig(**{**base, **kw})


def test_qemu_command_tcg_with_swap(tmp_path):
    cfg = _config(tmp_path, swap_image=tmp_path / "swap.img", append=("lru_gen.enabled=1",))
    cmd = qemu_command(cfg)
    joined = " ".join(cmd)
    assert cmd[0] == "qemu-system-x86_64"
    assert "-accel tcg,thread=multi -cpu max" in joined
    assert "-m 1024M -smp 2" in joined
    assert f"-kernel {tmp_path / 'bz'} -initrd {tmp_path / 'i.cpio'}" in joined
    append = cmd[cmd.index("-append") + 1]
    assert append.split() == ["console=ttyS0,115200", "quiet", "panic=-1", "mem=1024M",
                              "transparent_hugepage=never", "rdinit=/init", "lru_gen.enabled=1"]
    assert cmd.count("-serial") == 2
    assert f"file:{tmp_path / 'console.log'}" in cmd
    assert f"file:{tmp_path / 'output.log'}" in cmd
    assert f"file={tmp_path / 'swap.img'},format=raw,if=virtio,cache=unsafe" in cmd
    assert "-no-reboot" in cmd
    assert "-nodefaults" in cmd


def test_qemu_command_kvm_without_swap(tmp_path):
    cmd = qemu_command(_config(tmp_path, accel="kvm", memory=512 << 20, cpus=4, thp="always"))
    joined = " ".join(cmd)
    assert "-accel kvm -cpu host" in joined
    assert "-m 512M -smp 4" in joined
    assert "mem=512M" in joined
    assert "transparent_hugepage=always" in joined
    assert "-drive" not in cmd
    with pytest.raises(Exception, match="accelerator"):
        qemu_command(_config(tmp_path, accel="hvf"))


def test_kvm_needs_hardware_virtualisation(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu pni hypervisor\n")
    assert not kvm_usable(cpuinfo=str(cpuinfo))
    cpuinfo.write_text("flags\t\t: fpu vmx\n")
    assert not kvm_usable(dev=str(tmp_path / "no-kvm"), cpuinfo=str(cpuinfo))


def test_boot_timeout_kills_qemu(tmp_path):
    script = tmp_path / "fake-qemu"
    script.write_text("#!/bin/sh\nsleep 30\n")
    script.chmod(0o755)
    cfg = _config(tmp_path, qemu=str(script))
    with pytest.raises(GuestTimeoutError, match="did not power off within 0.5s") as info:
        boot(cfg, 0.5)
    assert info.value.log_path == str(tmp_path / "console.log")


# -- run_on_kernel, with QEMU replaced -----------------------------------------------------------

GUEST_OUTPUT = """\
KSMREPRO-INIT release=6.1.0-56-amd64 mem_total_kb=466148 cpus=2
KSMREPRO-INIT swap=off
KSMREPRO-INIT thp=never lru_gen=0x0000 swappiness=60
KSMREPRO-INIT run
KSMREPRO begin steps=6 release=6.1.0-56-amd64
KSMREPRO step=4 op=ksm_wait time_ns=44092870 full_scans=2
KSMREPRO step=5 op=expect time_ns=45647700 pages_shared=1 pages_sharing=9
KSMREPRO end
KSMREPRO-INIT exit=0
KSMREPRO-INIT done
"""


@pytest.fixture
def no_qemu(monkeypatch, tmp_path):
    """run_on_kernel's tools replaced: returns the list of QemuConfigs booted."""
    booted: list[QemuConfig] = []
    program = tmp_path / "prog"
    program.write_bytes(b"\x7fELF")
    monkeypatch.setattr(runner_mod, "find_qemu", lambda: "qemu-system-x86_64")
    monkeypatch.setattr(runner_mod, "compile_static", lambda source, name: program)
    monkeypatch.setattr(runner_mod, "build_initramfs",
                        lambda prog, mods, swap: tmp_path / f"initrd-{len(mods)}-{swap}")
    monkeypatch.setattr(runner_mod, "kvm_usable", lambda: False)

    def set_output(text: str) -> None:
        def fake_boot(cfg: QemuConfig, timeout: float) -> BootOutcome:
            booted.append(cfg)
            cfg.output_log.write_text(text)
            cfg.console_log.write_text("[    0.0] Linux version 6.1.0-56-amd64\n" + text)
            if cfg.swap_image is not None:
                assert cfg.swap_image.stat().st_blocks == 0  # sparse
            return BootOutcome(0, 8.4, "", qemu_command(cfg))

        monkeypatch.setattr(runner_mod, "boot", fake_boot)

    return booted, set_output


def test_run_on_kernel_glue(tmp_path, no_qemu):
    booted, set_output = no_qemu
    set_output(GUEST_OUTPUT)
    kernel = fake_package(tmp_path / "pkg")
    res = runner_mod.run_on_kernel(load_scenario(str(MERGE)), kernel, workdir=tmp_path / "run")
    assert (res.model, res.status, res.accel) == ("real:6.1.0-56-amd64", "passed", "tcg")
    assert res.observations[0].values == {"pages_shared": 1, "pages_sharing": 9}
    assert res.console_log == str(tmp_path / "run" / "console.log")
    assert (tmp_path / "run" / "test.c").read_text().startswith("/*")
    assert res.guest["swap"] == "off"
    assert res.elapsed_s == 8.4
    assert res.stats == {"kvm": 0, "elapsed_ms": 8400}
    assert res.real_json()["cmdline"].startswith("console=ttyS0")
    assert booted[0].memory == 512 << 20
    assert booted[0].swap_image is None


def test_run_on_kernel_swap_needs_modules(tmp_path, no_qemu):
    booted, set_output = no_qemu
    set_output(GUEST_OUTPUT.replace("swap=off", "swap=failed"))
    kernel = fake_package(tmp_path / "pkg")
    with pytest.raises(GuestError, match="could not enable its swap disk"):
        runner_mod.run_on_kernel(load_scenario(str(HUGH)), kernel, workdir=tmp_path / "run")
    assert booted[0].swap_image == tmp_path / "run" / "swap.img"
    assert booted[0].initrd.name == "initrd-5-True"  # the 5 virtio modules went in
    assert not (tmp_path / "run" / "swap.img").exists()  # removed after the boot


def test_run_on_kernel_guest_that_never_ran_init(tmp_path, no_qemu):
    _, set_output = no_qemu
    set_output("Kernel panic - not syncing: VFS: Unable to mount root fs\n")
    with pytest.raises(GuestError, match="never ran /init"):
        runner_mod.run_on_kernel(load_scenario(str(MERGE)), fake_package(tmp_path / "pkg"),
                                 workdir=tmp_path / "run")


def test_run_on_kernel_clear_errors(tmp_path, monkeypatch):
    scn = load_scenario(str(MERGE))
    with pytest.raises(KernelImageError, match="no such kernel image"):
        runner_mod.run_on_kernel(scn, tmp_path / "vmlinuz-missing")
    (tmp_path / "notbz").write_bytes(b"\0" * 4096)
    monkeypatch.setattr(runner_mod, "find_qemu", lambda: "qemu-system-x86_64")
    with pytest.raises(KernelImageError, match="not an x86 bzImage"):
        runner_mod.run_on_kernel(scn, tmp_path / "notbz")
    monkeypatch.setenv("KSMREPRO_QEMU", "qemu-system-nonexistent")
    from ksmrepro.realkernel.qemu import find_qemu

    with pytest.raises(ToolMissingError, match="apt-get install qemu-system-x86"):
        find_qemu()


def test_default_timeout_grows_with_pressure():
    hugh = load_scenario(str(HUGH))
    merge = load_scenario(str(MERGE))
    assert runner_mod.default_timeout(merge, "tcg") == runner_mod.DEFAULT_TIMEOUT_S
    assert runner_mod.default_timeout(hugh, "tcg") > runner_mod.default_timeout(hugh, "kvm")
    assert runner_mod.default_timeout(hugh, "tcg") >= 1200


def test_guest_report():
    report = runner_mod.guest_report(GUEST_OUTPUT)
    assert report["release"] == "6.1.0-56-amd64"
    assert report["lru_gen"] == "0x0000"
    assert report["exit"] == "0"
