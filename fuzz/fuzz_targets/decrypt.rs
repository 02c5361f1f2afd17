#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fission_fuzz::checks::decrypt_is_total(data);
});
