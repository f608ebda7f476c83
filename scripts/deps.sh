#!/usr/bin/env bash
# Install the host tools the tests, benchmarks and demo need, only when something is missing.
# Debian 12 package names; safe to run again.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || need+=(qemu-system-x86)
ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 && ls -d /lib/modules/*-amd64 >/dev/null 2>&1 || need+=(linux-image-amd64)
have mcopy || need+=(mtools)
have mkfs.vfat || need+=(dosfstools)
have xorriso || need+=(xorriso)
have isoinfo || need+=(genisoimage)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx sh || need+=(busybox-static)
have cpio || need+=(cpio)
[ -x /usr/bin/time ] || need+=(time)    # GNU time: peak RSS in make bench
have mkfs.ext4 || need+=(e2fsprogs)
have mksquashfs || need+=(squashfs-tools)
have mkinitramfs || need+=(initramfs-tools)
have openssl || need+=(openssl)
have zstd || need+=(zstd)
# Firmware and boot loaders for the boot media and the firmware boots (issue 10).
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] && [ -f /usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd ] || need+=(ovmf)
[ -f /usr/lib/SYSLINUX/mbr.bin ] || need+=(syslinux)
[ -d /usr/lib/syslinux/modules/bios ] || need+=(syslinux-common)
[ -f /usr/lib/ISOLINUX/isolinux.bin ] || need+=(isolinux)
[ -d /usr/lib/grub/x86_64-efi ] || need+=(grub-efi-amd64-bin)
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || need+=(systemd-boot-efi)
have sbsign || need+=(sbsigntool)
have objcopy || need+=(binutils)        # mkimage --uki adds the PE sections with objcopy
have cert-to-efi-sig-list || need+=(efitools)

if [ ${#need[@]} -eq 0 ]; then
    echo "deps: all host tools present"
    exit 0
fi
echo "deps: installing ${need[*]}"
if [ "$(id -u)" != 0 ]; then
    echo "deps: need root to install ${need[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
