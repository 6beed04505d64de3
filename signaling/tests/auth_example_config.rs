//! The example directory file in `signaling/examples/orgs.toml` loads.

use std::path::Path;

use protocol::{RoomId, TenantId};
use signaling::auth::StaffRole;
use signaling::directory::Directory;

#[test]
fn example_orgs_file_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/orgs.toml");
    let dir = Directory::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dir.tenants().len(), 2);
    let north = TenantId::new("northside").unwrap();
    let harbour = TenantId::new("harbour").unwrap();
    assert_eq!(dir.rooms_of(&north).len(), 1);
    let room = dir.room(&RoomId::new("harbour-intake").unwrap()).unwrap();
    assert!(room.hide_position);
    assert_eq!(room.tenant, harbour);
    let staff = dir.clinicians_of(&north);
    assert_eq!(staff.len(), 2);
    assert!(staff.iter().any(|c| c.role == StaffRole::Admin));
    let harbour_staff = dir.clinicians_of(&harbour);
    assert_eq!(harbour_staff.iter().filter(|c| !c.enabled).count(), 1);
}
