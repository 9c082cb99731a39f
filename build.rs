// pylib/ is frozen into the binary by a proc macro, which cargo cannot see
// reading it: rebuild when anything there changes.
fn main() {
    println!("cargo:rerun-if-changed=pylib");
}
