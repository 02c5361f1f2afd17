// The migrations are embedded by `sqlx::migrate!`; a migration added or changed must rebuild
// the crate, which cargo does not know on its own.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
