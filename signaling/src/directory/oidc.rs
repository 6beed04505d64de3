//! The OpenID Connect part of the directory: an organisation's `[tenant.oidc]`
//! table (which identity provider its clinicians sign in with, and how the
//! provider's users map to Anteroom accounts), and the accounts' external
//! subjects (`external_subject` on a `[[clinician]]`, or accounts provisioned
//! at first sign-in). The login flow itself is in `crate::auth::oidc`.

use std::fmt::Write as _;
use std::path::PathBuf;

use protocol::{ClinicianId, Sensitive, TenantId};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use url::Url;

use super::{Account, ClinicianInfo, Directory, normalize_username, validate_display_name};
use crate::auth::{AuthError, StaffRole};

/// Longest client secret read from `client_secret_file`.
const MAX_SECRET_BYTES: usize = 4096;
/// Most tenant ids in `tenant_ids`.
const MAX_TENANT_IDS: usize = 64;
/// Longest external subject (OIDC `sub` is at most 255 ASCII characters).
pub const MAX_SUBJECT_BYTES: usize = 255;

/// Which ID-token claim identifies the clinician (`user_claim`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserClaim {
    /// `sub`: stable, per-provider subject; matched to `external_subject`.
    #[default]
    Sub,
    /// `oid`: Entra ID's object id, the same for every app; matched to `external_subject`.
    Oid,
    /// `email`: matched to the account's username (refused if `email_verified` is false).
    Email,
    /// `preferred_username`: matched to the account's username.
    PreferredUsername,
}

impl UserClaim {
    /// The claim's name in the ID token.
    pub fn claim(self) -> &'static str {
        match self {
            UserClaim::Sub => "sub",
            UserClaim::Oid => "oid",
            UserClaim::Email => "email",
            UserClaim::PreferredUsername => "preferred_username",
        }
    }

    /// Whether the claim is matched to `external_subject` (else to the username).
    pub fn is_subject(self) -> bool {
        matches!(self, UserClaim::Sub | UserClaim::Oid)
    }
}

/// `[tenant.oidc]` as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OidcEntry {
    issuer: String,
    client_id: String,
    #[serde(default)]
    client_secret_file: Option<PathBuf>,
    redirect_base: String,
    #[serde(default)]
    tenant_ids: Vec<String>,
    #[serde(default)]
    user_claim: UserClaim,
    #[serde(default)]
    provision: bool,
}

/// An organisation's OpenID Connect settings, validated.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    /// The provider's issuer; discovery is `<issuer>/.well-known/openid-configuration`.
    pub issuer: Url,
    /// This service's client id at the provider (also the ID token's audience).
    pub client_id: String,
    /// The client secret, if the client is confidential (else PKCE alone).
    pub client_secret: Option<Sensitive<String>>,
    /// `<redirect_base>/auth/oidc/callback` is the redirect URI registered at the provider.
    pub redirect_base: Url,
    /// Allowed values of the `tid` claim (Entra tenant ids); empty: not checked.
    pub tenant_ids: Vec<String>,
    /// The claim that identifies the clinician.
    pub user_claim: UserClaim,
    /// Create unknown users as clinicians at first sign-in (default: refuse them).
    pub provision: bool,
}

impl OidcSettings {
    /// The redirect URI sent to the provider.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/auth/oidc/callback",
            self.redirect_base.as_str().trim_end_matches('/')
        )
    }
}

/// Whether `url` may be fetched or redirected to: `https`, or plain `http`
/// only to a loopback host (tests and local development).
pub fn allowed_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

impl OidcEntry {
    /// Validates the entry (and reads the secret file).
    pub(super) fn validate(self) -> Result<OidcSettings, String> {
        let issuer = Url::parse(&self.issuer).map_err(|e| format!("oidc.issuer: {e}"))?;
        if !allowed_url(&issuer) || issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(
                "oidc.issuer must be an https URL without query or fragment (http only for loopback)"
                    .to_owned(),
            );
        }
        let redirect_base =
            Url::parse(&self.redirect_base).map_err(|e| format!("oidc.redirect_base: {e}"))?;
        if !allowed_url(&redirect_base) || redirect_base.query().is_some() {
            return Err(
                "oidc.redirect_base must be an https URL (http only for loopback)".to_owned(),
            );
        }
        let client_id = self.client_id.trim().to_owned();
        if client_id.is_empty() || client_id.len() > 256 || client_id.chars().any(char::is_control)
        {
            return Err("oidc.client_id must be 1 to 256 characters".to_owned());
        }
        if self.tenant_ids.len() > MAX_TENANT_IDS
            || self
                .tenant_ids
                .iter()
                .any(|t| t.is_empty() || t.len() > 128 || t.chars().any(char::is_control))
        {
            return Err(format!(
                "oidc.tenant_ids: at most {MAX_TENANT_IDS} ids of 1 to 128 characters"
            ));
        }
        if self.provision && !self.user_claim.is_subject() {
            return Err(
                "oidc.provision needs user_claim = \"sub\" or \"oid\" (e-mail addresses can be reassigned)"
                    .to_owned(),
            );
        }
        let client_secret = match self.client_secret_file {
            None => None,
            Some(path) => Some(Sensitive::new(read_secret(&path)?)),
        };
        Ok(OidcSettings {
            issuer,
            client_id,
            client_secret,
            redirect_base,
            tenant_ids: self.tenant_ids,
            user_claim: self.user_claim,
            provision: self.provision,
        })
    }
}

fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "oidc.client_secret_file: cannot read {}: {e}",
            path.display()
        )
    })?;
    let secret = text.trim();
    if secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "oidc.client_secret_file: {} must hold 1 to {MAX_SECRET_BYTES} bytes",
            path.display()
        ));
    }
    Ok(secret.to_owned())
}

/// Checks an `external_subject` from the file.
pub(super) fn validate_subject(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_SUBJECT_BYTES || s.chars().any(char::is_control) {
        return Err(format!(
            "external_subject must be 1 to {MAX_SUBJECT_BYTES} bytes without control characters"
        ));
    }
    Ok(())
}

impl Directory {
    /// The OpenID Connect settings of `tenant`, if it has any.
    pub fn oidc(&self, tenant: &TenantId) -> Option<&OidcSettings> {
        self.oidc.get(tenant)
    }

    /// The account of `tenant` whose external subject is `subject`.
    pub fn clinician_by_subject(&self, tenant: &TenantId, subject: &str) -> Option<ClinicianInfo> {
        let acc = self.read();
        let id = acc.subjects.get(&(tenant.clone(), subject.to_owned()))?;
        acc.by_id.get(id).map(|a| a.info.clone())
    }

    /// The account of `tenant` whose username is `username` (normalised);
    /// `None` if that username belongs to another organisation.
    pub fn clinician_by_username(
        &self,
        tenant: &TenantId,
        username: &str,
    ) -> Option<ClinicianInfo> {
        let acc = self.read();
        let id = acc.by_username.get(&normalize_username(username))?;
        acc.by_id
            .get(id)
            .filter(|a| &a.info.tenant == tenant)
            .map(|a| a.info.clone())
    }

    /// Creates an enabled clinician of `tenant` for an identity-provider user
    /// seen for the first time (`provision = true`). It has no password; its
    /// id and username derive from the tenant and subject, so the same user
    /// gets the same id after a restart. Idempotent: an existing account for
    /// that subject is returned as is.
    pub fn provision_clinician(
        &self,
        tenant: &TenantId,
        subject: &str,
        display_name: &str,
    ) -> Result<ClinicianInfo, AuthError> {
        if !self.tenants.contains_key(tenant) || subject.len() > MAX_SUBJECT_BYTES {
            return Err(AuthError::UnknownAccount);
        }
        let digest = Sha256::digest(format!("{tenant}\n{subject}").as_bytes());
        let short = digest.iter().take(10).fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        let id = ClinicianId::new(format!("oidc-{short}"))
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let username = id.as_str().to_owned();
        let display_name = if validate_display_name(display_name).is_ok() {
            display_name.trim().to_owned()
        } else {
            "Clinician".to_owned()
        };
        let mut acc = self.write();
        let key = (tenant.clone(), subject.to_owned());
        if let Some(existing) = acc.subjects.get(&key).and_then(|id| acc.by_id.get(id)) {
            return Ok(existing.info.clone());
        }
        if acc.by_id.contains_key(&id) || acc.by_username.contains_key(&username) {
            return Err(AuthError::UsernameTaken);
        }
        let info = ClinicianInfo {
            id: id.clone(),
            tenant: tenant.clone(),
            username: username.clone(),
            display_name,
            role: StaffRole::Clinician,
            enabled: true,
        };
        acc.by_username.insert(username, id.clone());
        acc.subjects.insert(key, id.clone());
        acc.by_id.insert(
            id,
            Account {
                info: info.clone(),
                password_hash: String::new(),
            },
        );
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(oidc: &str, clinician: &str) -> Result<Directory, crate::Error> {
        Directory::from_toml_str(&format!(
            "[[tenant]]\nid = \"north\"\nname = \"North\"\n{oidc}\n{clinician}"
        ))
    }

    const OIDC: &str = "[tenant.oidc]\nissuer = \"https://login.example.com/tid-1/v2.0\"\n\
                        client_id = \"app\"\nredirect_base = \"https://anteroom.example.org\"\n";
    const LEE: &str = "[[clinician]]\nid = \"dr-lee\"\ntenant = \"north\"\nusername = \"lee\"\n\
                       display_name = \"Dr Lee\"\nexternal_subject = \"sub-1\"\n";

    #[test]
    fn oidc_tenant_accounts_need_no_password() {
        let d = dir(OIDC, LEE).unwrap();
        let north = TenantId::new("north").unwrap();
        let s = d.oidc(&north).unwrap();
        assert_eq!(
            s.redirect_uri(),
            "https://anteroom.example.org/auth/oidc/callback"
        );
        assert_eq!(s.user_claim, UserClaim::Sub);
        assert!(!s.provision);
        let lee = d.clinician_by_subject(&north, "sub-1").unwrap();
        assert_eq!(lee.id.as_str(), "dr-lee");
        assert!(d.clinician_by_subject(&north, "sub-2").is_none());
        // No password: never a local login record.
        assert!(d.login_record("lee").is_none());
        // Without [tenant.oidc] the password is required.
        let e = dir("", LEE).err().unwrap().to_string();
        assert!(e.contains("password_hash is required"), "{e}");
    }

    #[test]
    fn refuses_unsafe_settings() {
        let plain = OIDC.replace("https://login.example.com", "http://login.example.com");
        let e = dir(&plain, "").err().unwrap().to_string();
        assert!(e.contains("oidc.issuer must be an https URL"), "{e}");
        let loopback = OIDC.replace("https://login.example.com", "http://127.0.0.1:9");
        assert!(dir(&loopback, "").is_ok());
        let email_provision = format!("{OIDC}user_claim = \"email\"\nprovision = true\n");
        let e = dir(&email_provision, "").err().unwrap().to_string();
        assert!(e.contains("provision needs"), "{e}");
        let missing = format!("{OIDC}client_secret_file = \"/nonexistent/anteroom-secret\"\n");
        let e = dir(&missing, "").err().unwrap().to_string();
        assert!(e.contains("client_secret_file: cannot read"), "{e}");
        let inline = format!("{OIDC}client_secret = \"s3cret\"\n");
        assert!(dir(&inline, "").is_err(), "inline secrets are refused");
        let dup = format!(
            "{LEE}[[clinician]]\nid = \"dr-two\"\ntenant = \"north\"\nusername = \"two\"\ndisplay_name = \"Two\"\nexternal_subject = \"sub-1\"\n"
        );
        let e = dir(OIDC, &dup).err().unwrap().to_string();
        assert!(e.contains("duplicate external_subject"), "{e}");
    }

    #[test]
    fn provisioning_is_stable_and_scoped() {
        let d = dir(OIDC, LEE).unwrap();
        let north = TenantId::new("north").unwrap();
        let a = d.provision_clinician(&north, "sub-9", "Dr Nine").unwrap();
        let b = d.provision_clinician(&north, "sub-9", "Other").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.role, StaffRole::Clinician);
        assert_eq!(d.clinician_by_subject(&north, "sub-9").unwrap().id, a.id);
        let unknown = TenantId::new("south").unwrap();
        assert!(d.provision_clinician(&unknown, "sub-9", "X").is_err());
        // Same username lookup is scoped to the organisation.
        assert!(d.clinician_by_username(&north, "LEE").is_some());
        assert!(d.clinician_by_username(&unknown, "lee").is_none());
    }

    #[test]
    fn only_https_or_loopback_http() {
        for (u, ok) in [
            ("https://idp.example.com/x", true),
            ("http://idp.example.com/x", false),
            ("http://127.0.0.1:8080/", true),
            ("http://[::1]:8080/", true),
            ("http://localhost/", true),
            ("ftp://idp.example.com/", false),
        ] {
            assert_eq!(allowed_url(&Url::parse(u).unwrap()), ok, "{u}");
        }
    }
}
