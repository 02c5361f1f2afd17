#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fission_fuzz::checks::callback_query_is_total(data);
});
