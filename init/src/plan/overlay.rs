//! Which overlay file the boot uses (docs/boot.md, "Overlay: choice"): the one `apkovl=` names,
//! else the single one found on the media. Several without a selector is an error (upstream
//! takes the first one it finds, which depends on device order), and so is an explicit overlay
//! that is not a regular file (upstream boots without it, silently).
use std::path::{Component, Path, PathBuf};

use overlays::OverlayKind;

use super::PlanError;
use crate::cmdline::{ApkovlSpec, MacAddr};
use crate::media::Medium;

/// The chosen overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayChoice {
    /// The file.
    pub file: PathBuf,
    /// `<file>.sig`, when it exists.
    pub signature: Option<PathBuf>,
    /// How it is wrapped, from its name (`overlays::kind_of`); `None` for a name that is not an
    /// overlay name (an explicit `apkovl=` may name any file), which is read as a plain gzip tar
    /// as Alpine does.
    pub kind: Option<OverlayKind>,
    /// The host it is for: the stem `HOST` of `HOST.apkovl.tar.gz[...]` (`overlays::host_of`),
    /// else the whole file name, which then matches no signed statement.
    pub host: String,
}

/// `apkovl=URL` made concrete: `{MAC}` becomes the configured card's address (lowercase, colon
/// separated, as Alpine writes it) and `{UUID}` the machine's DMI product UUID, every
/// occurrence. Returns the URL and the file name it is saved under: its last path component
/// without the query, which must be a plain file name (so `HOST.apkovl.tar.gz` names the host
/// its signed statement must be for).
pub fn overlay_url(
    template: &str,
    mac: Option<MacAddr>,
    uuid: Option<&str>,
) -> Result<(String, String), PlanError> {
    let bad = |why: &str| PlanError::OverlayUrl(template.to_string(), why.to_string());
    if !(template.starts_with("http://") || template.starts_with("https://")) {
        return Err(bad("only http:// and https:// can be downloaded"));
    }
    let mut url = template.to_string();
    if url.contains("{MAC}") {
        let mac = mac.ok_or_else(|| bad("{MAC}: the network card has no Ethernet address"))?;
        url = url.replace("{MAC}", &mac.to_string());
    }
    if url.contains("{UUID}") {
        let uuid = uuid
            .map(str::trim)
            .filter(|u| !u.is_empty() && u.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
            .ok_or_else(|| bad("{UUID}: no DMI product UUID (/sys/class/dmi/id/product_uuid)"))?;
        if is_placeholder_uuid(uuid) {
            return Err(bad(&format!(
                "{{UUID}}: the DMI product UUID {uuid} is a firmware placeholder that many \
                 machines share; use {{MAC}}"
            )));
        }
        url = url.replace("{UUID}", uuid);
    }
    let path = url.split(['?', '#']).next().unwrap_or("");
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    let name = after_host.rsplit('/').next().unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        return Err(bad("the URL names no file"));
    }
    Ok((url.clone(), name.to_string()))
}

/// Product UUIDs that firmware vendors leave unset: every board with that firmware has it.
fn is_placeholder_uuid(uuid: &str) -> bool {
    let hex: String = uuid.chars().filter(|c| *c != '-').collect();
    hex.chars().all(|c| c == '0')
        || hex.chars().all(|c| c.eq_ignore_ascii_case(&'f'))
        || hex.eq_ignore_ascii_case("03000200040005000006000700080009")
}

/// A warning for a template whose `{MAC}` or `{UUID}` are all outside the file name: the overlay's
/// host is its file name (the signed statement must name it), so every machine would expect the
/// same host and a server could hand one machine another's overlay.
pub fn shared_name_warning(template: &str) -> Option<String> {
    let path = template.split(['?', '#']).next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("");
    let placeholders = ["{MAC}", "{UUID}"];
    let shared = placeholders.iter().any(|p| template.contains(p))
        && !placeholders.iter().any(|p| name.contains(p));
    shared.then(|| {
        format!(
            "apkovl={}: {{MAC}}/{{UUID}} outside the file name: every machine expects an overlay \
             signed for the same host, {name}",
            apk::http::url::display(template)
        )
    })
}

/// The URL of a download's detached signature: `.sig` appended to the path, before the query;
/// a fragment (never sent to the server) is dropped, so it cannot turn `X.sig` into `X`.
pub fn signature_url(url: &str) -> String {
    let url = url.split('#').next().unwrap_or("");
    match url.split_once('?') {
        Some((path, query)) => format!("{path}.sig?{query}"),
        None => format!("{url}.sig"),
    }
}

/// What a path is, for decisions that depend on the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Anything else that exists.
    Other,
}

/// Picks the overlay (docs/boot.md, "Overlay: choice"): `apkovl=DEV:PATH` → PATH on that medium;
/// `apkovl=PATH` → that path; nothing → the single overlay found on the media, none when there is
/// none, an error when there are several. An explicit overlay that is not a regular file is an
/// error (upstream boots without it, silently).
pub fn choose_overlay(
    spec: Option<&ApkovlSpec>,
    media: &[Medium],
    kind: &dyn Fn(&Path) -> Option<Kind>,
) -> Result<Option<OverlayChoice>, PlanError> {
    let file = match spec {
        Some(ApkovlSpec::Url(u)) => return Err(PlanError::UrlOverlay(u.clone())),
        Some(ApkovlSpec::OnDevice { dev, path, .. }) => {
            let medium = media
                .iter()
                .find(|m| m.matches(dev))
                .ok_or_else(|| PlanError::OverlayDeviceMissing(dev.to_string()))?;
            let rel = Path::new(path.trim_start_matches('/'));
            if rel.components().any(|c| !matches!(c, Component::Normal(_)))
                || rel.as_os_str().is_empty()
            {
                return Err(PlanError::OverlayPathEscapes(path.clone()));
            }
            medium.mount_point.join(rel)
        }
        Some(ApkovlSpec::Path(p)) => p.clone(),
        None => {
            let all: Vec<PathBuf> = media
                .iter()
                .flat_map(|m| m.overlays.iter().cloned())
                .collect();
            match all.len() {
                0 => return Ok(None),
                1 => all[0].clone(),
                _ => return Err(PlanError::AmbiguousOverlay(all)),
            }
        }
    };
    if kind(&file) != Some(Kind::File) {
        return Err(PlanError::OverlayNotAFile(file));
    }
    let mut sig = file.clone().into_os_string();
    sig.push(".sig");
    let sig = PathBuf::from(sig);
    let signature = (kind(&sig) == Some(Kind::File)).then_some(sig);
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = overlays::kind_of(&name);
    let host = overlays::host_of(&name).unwrap_or(&name).to_string();
    Ok(Some(OverlayChoice {
        file,
        signature,
        kind,
        host,
    }))
}

/// The most a downloaded overlay may have: [`overlays::MAX_OVERLAY_BYTES`], and no more than a
/// quarter of the RAM unused when the download starts (`ram_unused`; `None`: unknown). The
/// download is held in memory, then written to the initramfs (RAM too), then inflated: a small
/// machine gets a clear "larger than N bytes allowed" naming the URL instead of running out of
/// memory in PID 1.
pub fn overlay_download_limit(ram_unused: Option<u64>) -> u64 {
    let max = overlays::MAX_OVERLAY_BYTES;
    ram_unused.map_or(max, |free| max.min(free / 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::media::sample_medium as medium;

    fn files(paths: &'static [&'static str]) -> impl Fn(&Path) -> Option<Kind> {
        move |p: &Path| {
            paths
                .iter()
                .any(|x| Path::new(x) == p)
                .then_some(Kind::File)
        }
    }

    #[test]
    fn overlay_urls() {
        let mac = MacAddr::parse_with("52:54:00:AB:00:01", ':');
        let uuid = Some("4c4c4544-0042-3510-8052-b4c04f4e4a31\n");
        assert_eq!(
            overlay_url("http://10.0.2.2:8080/ovl/{MAC}.apkovl.tar.gz", mac, None).unwrap(),
            (
                "http://10.0.2.2:8080/ovl/52:54:00:ab:00:01.apkovl.tar.gz".to_string(),
                "52:54:00:ab:00:01.apkovl.tar.gz".to_string()
            )
        );
        assert_eq!(
            overlay_url("https://cfg/{UUID}/{MAC}.apkovl.tar.gz?t=1", mac, uuid).unwrap(),
            (
                "https://cfg/4c4c4544-0042-3510-8052-b4c04f4e4a31/52:54:00:ab:00:01.apkovl.tar.gz?t=1"
                    .to_string(),
                "52:54:00:ab:00:01.apkovl.tar.gz".to_string()
            )
        );
        let err = |t: &str, m, u| overlay_url(t, m, u).unwrap_err().to_string();
        assert_eq!(
            err("http://x/{MAC}.apkovl.tar.gz", None, None),
            "apkovl=http://x/{MAC}.apkovl.tar.gz: {MAC}: the network card has no Ethernet address"
        );
        assert!(err("http://x/{UUID}.apkovl.tar.gz", mac, Some("")).contains("{UUID}"));
        assert!(err("http://x/{UUID}.apkovl.tar.gz", mac, Some("../x")).contains("{UUID}"));
        assert!(err("ftp://x/h.apkovl.tar.gz", mac, None).contains("only http://"));
        assert!(err("http://x/", mac, None).contains("names no file"));
        assert!(err("http://x", mac, None).contains("names no file"));
        assert!(err("http://x/a/..?q", mac, None).contains("names no file"));
        // Firmware placeholders: a whole fleet would share one name.
        for placeholder in [
            "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "03000200-0400-0500-0006-000700080009",
        ] {
            assert_eq!(
                err("http://x/{UUID}.apkovl.tar.gz", mac, Some(placeholder)),
                format!(
                    "apkovl=http://x/{{UUID}}.apkovl.tar.gz: {{UUID}}: the DMI product UUID \
                     {placeholder} is a firmware placeholder that many machines share; use {{MAC}}"
                )
            );
        }
        // The password of a URL never reaches the console.
        assert_eq!(
            err("http://u:secret@x/{MAC}.apkovl.tar.gz", None, None),
            "apkovl=http://u:*@x/{MAC}.apkovl.tar.gz: {MAC}: the network card has no Ethernet address"
        );
    }

    #[test]
    fn placeholders_outside_the_file_name_are_warned_about() {
        assert_eq!(
            shared_name_warning("http://x/ovl/{MAC}.apkovl.tar.gz"),
            None
        );
        assert_eq!(
            shared_name_warning("http://x/{UUID}/{MAC}.apkovl.tar.gz?t=1"),
            None
        );
        assert_eq!(
            shared_name_warning("http://x/{MAC}/box.apkovl.tar.gz"),
            Some(
                "apkovl=http://x/{MAC}/box.apkovl.tar.gz: {MAC}/{UUID} outside the file name: \
                 every machine expects an overlay signed for the same host, box.apkovl.tar.gz"
                    .into()
            )
        );
        assert!(shared_name_warning("http://x/box.apkovl.tar.gz?mac={MAC}").is_some());
    }

    #[test]
    fn signature_urls() {
        assert_eq!(signature_url("http://x/a.tar.gz"), "http://x/a.tar.gz.sig");
        assert_eq!(
            signature_url("http://x/a.tar.gz?t=1"),
            "http://x/a.tar.gz.sig?t=1"
        );
        // A fragment never makes the signature's URL the file's own.
        assert_eq!(
            signature_url("http://x/a.tar.gz#.sig"),
            "http://x/a.tar.gz.sig"
        );
        assert_eq!(signature_url("http://x/a?q#f"), "http://x/a.sig?q");
    }

    #[test]
    fn overlay_found_on_media() {
        let media = [medium(
            "vda",
            "vfat",
            Some("A"),
            &["apks"],
            &["h.apkovl.tar.gz"],
        )];
        let kind = files(&[
            "/media/vda/h.apkovl.tar.gz",
            "/media/vda/h.apkovl.tar.gz.sig",
        ]);
        let c = choose_overlay(None, &media, &kind).unwrap().unwrap();
        assert_eq!(c.file, PathBuf::from("/media/vda/h.apkovl.tar.gz"));
        assert_eq!(
            c.signature,
            Some(PathBuf::from("/media/vda/h.apkovl.tar.gz.sig"))
        );
        assert_eq!(c.kind, Some(OverlayKind::Plain));
        assert_eq!(c.host, "h");
        let kind = files(&["/media/vda/h.apkovl.tar.gz"]);
        assert_eq!(
            choose_overlay(None, &media, &kind)
                .unwrap()
                .unwrap()
                .signature,
            None
        );
    }

    #[test]
    fn no_overlay_anywhere_is_fine() {
        let media = [medium("vda", "vfat", None, &["apks"], &[])];
        assert_eq!(choose_overlay(None, &media, &files(&[])), Ok(None));
    }

    #[test]
    fn several_overlays_without_selector_are_ambiguous() {
        let media = [
            medium("vda", "vfat", None, &["apks"], &["a.apkovl.tar.gz"]),
            medium("vdb", "ext4", None, &[], &["b.apkovl.tar.gz"]),
        ];
        let err = choose_overlay(None, &media, &files(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ambiguous apkovl: 2 found (/media/vda/a.apkovl.tar.gz, /media/vdb/b.apkovl.tar.gz); select one with apkovl="
        );
        // A selector resolves it.
        let spec = ApkovlSpec::parse("/media/vdb/b.apkovl.tar.gz");
        let c = choose_overlay(Some(&spec), &media, &files(&["/media/vdb/b.apkovl.tar.gz"]))
            .unwrap()
            .unwrap();
        assert_eq!(c.file, PathBuf::from("/media/vdb/b.apkovl.tar.gz"));
    }

    #[test]
    fn overlay_on_named_device() {
        let media = [
            medium("vda", "vfat", Some("BOOT"), &["apks"], &[]),
            medium("vdb", "ext4", Some("CFG"), &[], &[]),
        ];
        let spec = ApkovlSpec::parse("LABEL=CFG:/cfg/h.apkovl.tar.gz.age");
        let c = choose_overlay(
            Some(&spec),
            &media,
            &files(&["/media/vdb/cfg/h.apkovl.tar.gz.age"]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.file, PathBuf::from("/media/vdb/cfg/h.apkovl.tar.gz.age"));
        assert_eq!(c.kind, Some(OverlayKind::Age));
        let missing = ApkovlSpec::parse("LABEL=NOPE:h.apkovl.tar.gz");
        assert_eq!(
            choose_overlay(Some(&missing), &media, &files(&[])),
            Err(PlanError::OverlayDeviceMissing("LABEL=NOPE".into()))
        );
        let escape = ApkovlSpec::parse("/dev/vdb:../../etc/shadow");
        assert!(matches!(
            choose_overlay(Some(&escape), &media, &files(&[])),
            Err(PlanError::OverlayPathEscapes(_))
        ));
    }

    #[test]
    fn explicit_overlay_must_be_a_regular_file() {
        let spec = ApkovlSpec::parse("/media/vda/missing.apkovl.tar.gz");
        assert_eq!(
            choose_overlay(Some(&spec), &[], &files(&[])),
            Err(PlanError::OverlayNotAFile(
                "/media/vda/missing.apkovl.tar.gz".into()
            ))
        );
        let dir = |_: &Path| Some(Kind::Other);
        assert!(matches!(
            choose_overlay(Some(&spec), &[], &dir),
            Err(PlanError::OverlayNotAFile(_))
        ));
    }

    #[test]
    fn kind_comes_from_the_overlays_crate() {
        let media = [medium(
            "vda",
            "vfat",
            None,
            &[],
            &["h.apkovl.tar.gz.aes-256-cbc"],
        )];
        let kind = files(&["/media/vda/h.apkovl.tar.gz.aes-256-cbc"]);
        let c = choose_overlay(None, &media, &kind).unwrap().unwrap();
        assert_eq!(
            c.kind,
            Some(OverlayKind::Legacy(overlays::Cipher::Aes256Cbc))
        );
        // An explicit file with another name is read as a plain overlay.
        let spec = ApkovlSpec::parse("/media/vda/config.tgz");
        let c = choose_overlay(Some(&spec), &media, &files(&["/media/vda/config.tgz"]))
            .unwrap()
            .unwrap();
        assert_eq!(c.kind, None);
        assert_eq!(c.host, "config.tgz");
    }

    #[test]
    fn an_overlay_download_is_bounded_by_free_ram() {
        let max = overlays::MAX_OVERLAY_BYTES;
        assert_eq!(overlay_download_limit(None), max);
        assert_eq!(overlay_download_limit(Some(1 << 30)), max);
        assert_eq!(overlay_download_limit(Some(64 << 20)), 16 << 20);
        assert_eq!(overlay_download_limit(Some(0)), 0);
    }
}
