# shellcheck shell=bash disable=SC2034  # sourced; its variables are for the caller
# Shared by scripts/cross-build, scripts/qemu-run and scripts/arm-smoke (sourced,
# not run): what each Raspberry Pi target needs on this Debian x86_64 machine.
#
# The way it works, without docker: rustup's standard library for the target,
# Debian's cross gcc to link and to build the C code (SQLite, ring), and
# qemu-user to run the result. The binaries are dynamically linked against glibc;
# to run them here qemu starts the target's own dynamic loader from the cross
# sysroot (/usr/<triple>/lib), so no foreign dpkg architecture, multiarch libc or
# QEMU_LD_PREFIX is needed.

# The Rust targets this project builds for a Pi, in order of importance.
PI_TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

# Sets GNU_TRIPLE, DEB_ARCH, QEMU, LOADER and APT_PACKAGES for the Rust target $1.
cross_target_facts() {
    case "$1" in
    aarch64-unknown-linux-gnu)
        GNU_TRIPLE=aarch64-linux-gnu
        DEB_ARCH=arm64
        QEMU=qemu-aarch64-static
        LOADER=ld-linux-aarch64.so.1
        APT_PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
        ;;
    armv7-unknown-linux-gnueabihf)
        GNU_TRIPLE=arm-linux-gnueabihf
        DEB_ARCH=armhf
        QEMU=qemu-arm-static
        LOADER=ld-linux-armhf.so.3
        APT_PACKAGES=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
        ;;
    *)
        echo "unsupported target $1 (supported: ${PI_TARGETS[*]})" >&2
        return 2
        ;;
    esac
    SYSROOT=/usr/$GNU_TRIPLE
}

# Runs a command up to $1 times, waiting a little longer after each failure: for
# package mirrors and downloads that fail now and then.
retry() {
    local attempts=$1 attempt=1
    shift
    until "$@"; do
        if [ "$attempt" -ge "$attempts" ]; then
            return 1
        fi
        echo "retrying in $((attempt * 10)) s: $*" >&2
        sleep $((attempt * 10))
        attempt=$((attempt + 1))
    done
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages given that are missing. apt-get update may report
# a broken index of a mirror that is mid-sync; the install is what must succeed.
apt_install_missing() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]} from Debian's packages" >&2
    # Everything to stderr: callers capture stdout for their own results.
    _apt_update_and_install() {
        as_root apt-get update -q >&2 ||
            echo "apt-get update reported errors; trying the install with the indexes it has" >&2
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    }
    retry 3 _apt_update_and_install
}

# Exports the cargo and cc settings that cross-compile for the Rust target $1 and
# run its programs under qemu (`cargo run/test --target $1` work too).
export_cross_env() {
    cross_target_facts "$1" || return
    local upper lower here
    upper=$(echo "$1" | tr 'a-z-' 'A-Z_')
    lower=$(echo "$1" | tr '-' '_')
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    export "CARGO_TARGET_${upper}_LINKER=${GNU_TRIPLE}-gcc"
    export "CARGO_TARGET_${upper}_RUNNER=${here}/qemu-run $1"
    export "CC_${lower}=${GNU_TRIPLE}-gcc"
    export "AR_${lower}=${GNU_TRIPLE}-ar"
    # Link with rustup's lld and pack the relative relocations (DT_RELR): a PIE
    # binary for aarch64 otherwise carries 24 bytes of relocation per pointer,
    # 1 MB of its 7. Needs glibc 2.36 (Raspberry Pi OS bookworm) on the Pi, which
    # the package's Depends says; Debian 12's own ld cannot pack them for ARM.
    local gcc_ld
    gcc_ld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/gcc-ld"
    if [ -x "$gcc_ld/ld.lld" ]; then
        export "CARGO_TARGET_${upper}_RUSTFLAGS=-C link-arg=-B$gcc_ld -C link-arg=-fuse-ld=lld -C link-arg=-Wl,-z,pack-relative-relocs"
    else
        echo "warning: no rust-lld in this toolchain; linking without packed relocations (a larger binary)" >&2
    fi
}
