#!/usr/bin/env bash
# deploy/install.sh — install (or upgrade) yunzhen on a Debian host with systemd. Run as root.
#
#   sudo deploy/install.sh [--release DIR] [--public DIR] [--prefix DIR] [--dry-run]
#
# Installs the seven executables into /opt/yunzhen/bin, the web clients into
# /opt/yunzhen/share/public, the units into /etc/systemd/system and example configuration into
# /etc/yunzhen (never overwriting a file that is already there), creates the `yunzhen` system user,
# then reloads systemd and enables yunzhen.target. It does not start or restart anything.
# See deploy/README.md.
set -euo pipefail

readonly BINARIES=(registration reports consult followup screening edge yunzhen)
readonly SERVICE_USER=yunzhen
readonly PLACEHOLDER_KEY=CHANGE-ME

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$script_dir")

release_dir="$repo_dir/.build/release"
public_dir="$repo_dir/Services/edge/Public"
prefix=""
dry_run=0

usage() {
    cat <<EOF
usage: $(basename "$0") [options] [RELEASE_DIR]

  --release DIR   built executables (swift build -c release --static-swift-stdlib);
                  default: $repo_dir/.build/release (also accepted as the only argument)
  --public DIR    static web clients for the edge; default: $repo_dir/Services/edge/Public
  --prefix DIR    install under DIR (DIR/opt/yunzhen, DIR/etc/yunzhen, DIR/etc/systemd/system)
                  instead of /; skips creating the user and calling systemctl (for testing)
  --dry-run       print what would be done, change nothing
  -h, --help      this help
EOF
}

die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
note() { printf '%s\n' "$*"; }

# Print a command, then run it unless --dry-run.
run() {
    local prefix_text="+"
    ((dry_run)) && prefix_text="[dry-run]"
    printf '%s' "$prefix_text"
    printf ' %q' "$@"
    printf '\n'
    ((dry_run)) || "$@"
}

while (($#)); do
    case $1 in
        --release) (($# >= 2)) || die "--release needs a directory"; release_dir=$2; shift ;;
        --release=*) release_dir=${1#*=} ;;
        --public) (($# >= 2)) || die "--public needs a directory"; public_dir=$2; shift ;;
        --public=*) public_dir=${1#*=} ;;
        --prefix) (($# >= 2)) || die "--prefix needs a directory"; prefix=$2; shift ;;
        --prefix=*) prefix=${1#*=} ;;
        --dry-run) dry_run=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) usage >&2; die "unknown option: $1" ;;
        *) release_dir=$1 ;;
    esac
    shift
done

if [[ -n $prefix ]]; then
    [[ $prefix == /* ]] || prefix="$PWD/$prefix"
    prefix=${prefix%/}
    [[ -n $prefix ]] || die "--prefix / is the same as no prefix; leave it out"
fi

readonly OPT_DIR="$prefix/opt/yunzhen"
readonly BIN_DIR="$OPT_DIR/bin"
readonly SHARE_DIR="$OPT_DIR/share"
readonly PUBLIC_DEST="$SHARE_DIR/public"
readonly DOC_DIR="$SHARE_DIR/doc"
readonly ETC_DIR="$prefix/etc/yunzhen"
readonly UNIT_DIR="$prefix/etc/systemd/system"
readonly UNITS_SRC="$script_dir/systemd"
readonly ENV_SRC="$script_dir/env"

# ---------------------------------------------------------------------------------------------
# Checks, before anything is changed.

if [[ -z $prefix ]] && ((!dry_run)) && ((EUID != 0)); then
    die "run as root (or use --dry-run, or --prefix DIR for a test install)"
fi

[[ -d $release_dir ]] || die "release folder not found: $release_dir (build with: swift build -c release --static-swift-stdlib)"
missing=()
for b in "${BINARIES[@]}"; do
    [[ -f $release_dir/$b && -x $release_dir/$b ]] || missing+=("$b")
done
((${#missing[@]} == 0)) || die "missing executables in $release_dir: ${missing[*]}"

[[ -d $public_dir ]] || die "web clients folder not found: $public_dir (use --public DIR)"
[[ -f $public_dir/index.html ]] || warn "$public_dir has no index.html; the edge will answer / with 404"

for u in yunzhen.target yunzhen-{registration,reports,consult,followup,screening,edge}.service; do
    [[ -f $UNITS_SRC/$u ]] || die "missing unit $UNITS_SRC/$u"
done
shopt -s nullglob
unit_files=("$UNITS_SRC"/*.service "$UNITS_SRC"/*.target "$UNITS_SRC"/*.timer)
shopt -u nullglob
for f in yunzhen registration edge screening; do
    [[ -f $ENV_SRC/$f.env.example ]] || die "missing $ENV_SRC/$f.env.example"
done

if [[ -z $prefix ]] && ((!dry_run)); then
    command -v systemctl >/dev/null || die "systemctl not found; this installer targets hosts run by systemd"
fi

# Executables linked against a Swift runtime that only exists on the build machine fail at start.
if command -v ldd >/dev/null; then
    for b in "${BINARIES[@]}"; do
        if ldd "$release_dir/$b" 2>/dev/null | grep -q 'not found'; then
            warn "$b needs shared libraries this host does not have (ldd: not found);" \
                "build with --static-swift-stdlib and install libsqlite3-0 and libcurl4"
        fi
    done
fi

# Copy a directory tree to dest, replacing what was there (stage next to it, then swap).
# Result: root-owned, directories 0755, files 0644 (or 0755 if executable).
replace_tree() {
    local src=$1 dest=$2
    run rm -rf "$dest.new" "$dest.old"
    run cp -R "$src" "$dest.new"
    run chmod -R u=rwX,go=rX "$dest.new"
    if [[ -e $dest ]]; then
        run mv "$dest" "$dest.old"
    fi
    run mv "$dest.new" "$dest"
    run rm -rf "$dest.old"
}

# ---------------------------------------------------------------------------------------------
# 1. The system user.

if [[ -n $prefix ]]; then
    note "skip: user $SERVICE_USER (--prefix given)"
elif getent passwd "$SERVICE_USER" >/dev/null; then
    note "user $SERVICE_USER exists"
else
    nologin=/usr/sbin/nologin
    [[ -x $nologin ]] || nologin=/sbin/nologin
    if getent group "$SERVICE_USER" >/dev/null; then
        group_opt=(--gid "$SERVICE_USER")
    else
        group_opt=(--user-group)
    fi
    run useradd --system "${group_opt[@]}" --home-dir /var/lib/yunzhen --no-create-home \
        --shell "$nologin" --comment "yunzhen internet hospital" "$SERVICE_USER"
fi

# Owner options for /etc/yunzhen; with --prefix the user may not exist, so keep the caller's.
if [[ -n $prefix ]]; then
    etc_dir_owner=()
    env_file_owner=()
else
    etc_dir_owner=(-o root -g "$SERVICE_USER")
    env_file_owner=(-o root -g root)
fi

# ---------------------------------------------------------------------------------------------
# 2. Executables, their resource bundles, web clients, runbook.

run install -d -m 0755 "$BIN_DIR" "$SHARE_DIR" "$DOC_DIR" "$UNIT_DIR"
for b in "${BINARIES[@]}"; do
    run install -m 0755 "$release_dir/$b" "$BIN_DIR/$b"
done

# SwiftPM resource bundles (<Package>_<Target>.resources) are found next to the executable.
shopt -s nullglob
for bundle in "$release_dir"/*.resources; do
    [[ -d $bundle ]] || continue
    replace_tree "$bundle" "$BIN_DIR/$(basename "$bundle")"
done
shopt -u nullglob

replace_tree "$public_dir" "$PUBLIC_DEST"
run install -m 0644 "$script_dir/README.md" "$DOC_DIR/README.md"

# ---------------------------------------------------------------------------------------------
# 3. systemd units.

for f in "${unit_files[@]}"; do
    run install -m 0644 "$f" "$UNIT_DIR/$(basename "$f")"
done

# ---------------------------------------------------------------------------------------------
# 4. Configuration: only ever added, never overwritten.

run install -d -m 0750 "${etc_dir_owner[@]}" "$ETC_DIR"
for f in yunzhen registration edge screening; do
    dest="$ETC_DIR/$f.env"
    if [[ -e $dest ]]; then
        note "keep: $dest (already present, not touched)"
    else
        # 0600 root: systemd reads EnvironmentFile= as root; the services never open these files.
        run install -m 0600 "${env_file_owner[@]}" "$ENV_SRC/$f.env.example" "$dest"
    fi
done

reg_env="$ETC_DIR/registration.env"

# The token-signing key: made by the yunzhen tool just installed; its public half goes to every process.
signing_line="^YUNZHEN_AUTH_SIGNING_KEY=$PLACEHOLDER_KEY\$"
if { [[ -f $reg_env ]] && grep -q "$signing_line" "$reg_env"; } ||
    { ((dry_run)) && [[ ! -e $reg_env ]]; }; then
    if ((dry_run)); then
        note "[dry-run] generate YUNZHEN_AUTH_SIGNING_KEY ($BIN_DIR/yunzhen keys generate) into $reg_env"
    else
        keys=$("$BIN_DIR/yunzhen" keys generate) || die "could not generate a token-signing key"
        signing=$(sed -n 's/^YUNZHEN_AUTH_SIGNING_KEY=//p' <<<"$keys")
        verify=$(sed -n 's/^YUNZHEN_AUTH_VERIFY_KEYS=//p' <<<"$keys")
        [[ -n $signing && -n $verify ]] || die "yunzhen keys generate printed no key"
        # The base64 may hold '/' and '+': use '|' as sed's delimiter (base64 never contains it).
        sed -i "s|$signing_line|YUNZHEN_AUTH_SIGNING_KEY=$signing|" "$reg_env"
        if grep -q '^YUNZHEN_AUTH_VERIFY_KEYS=$' "$ETC_DIR/yunzhen.env"; then
            sed -i "s|^YUNZHEN_AUTH_VERIFY_KEYS=\$|YUNZHEN_AUTH_VERIFY_KEYS=$verify|" "$ETC_DIR/yunzhen.env"
        fi
        unset keys signing verify
        note "+ generated YUNZHEN_AUTH_SIGNING_KEY into $reg_env and its public key into $ETC_DIR/yunzhen.env"
    fi
fi

# ---------------------------------------------------------------------------------------------
# 5. systemd.

running=0
if [[ -n $prefix ]]; then
    note "skip: systemctl daemon-reload / enable (--prefix given)"
else
    if [[ -d /run/systemd/system ]]; then
        run systemctl daemon-reload
        if ((!dry_run)) && systemctl is-active --quiet yunzhen.target; then
            running=1
        fi
    else
        note "systemd is not running here; skipping daemon-reload"
    fi
    # Also= in yunzhen.target enables the six units with it; naming them too is harmless.
    run systemctl enable yunzhen.target yunzhen-registration.service yunzhen-reports.service \
        yunzhen-consult.service yunzhen-followup.service yunzhen-screening.service yunzhen-edge.service
fi

# ---------------------------------------------------------------------------------------------

cat <<EOF

yunzhen installed$( ((dry_run)) && printf ' (dry run: nothing was changed)')$([[ -n $prefix ]] && printf ' under %s' "$prefix").
Next steps:
  review the configuration:   $ETC_DIR/yunzhen.env, registration.env, edge.env, screening.env
EOF
if ((running)); then
    cat <<EOF
  yunzhen is running the previous version; restart it:   systemctl restart yunzhen.target
EOF
else
    cat <<EOF
  start everything:           systemctl start yunzhen.target
EOF
fi
cat <<EOF
  check:                      systemctl status 'yunzhen-*'   and   curl -s http://127.0.0.1:8080/health
  logs:                       journalctl -u yunzhen-edge -o cat
EOF
