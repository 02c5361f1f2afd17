#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fission_fuzz::checks::push_xml_round_trips(data);
});
