//! Smoke test of `pagewire scenarios --quick`: every paper's claim is printed with a verdict,
//! and the JSON lists them.

use std::process::Command;

#[test]
fn quick_scenarios_print_every_claim_with_a_verdict() {
    let out = std::env::temp_dir().join(format!("pagewire-scenarios-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_pagewire"))
        .args(["scenarios", "--quick", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for paper in ["mirror", "two-fold", "history-majority", "vCPU limit"] {
        assert!(stdout.contains(paper), "{paper} missing:\n{stdout}");
    }
    assert_eq!(stdout.matches("verdict:").count(), 4, "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("scenarios.json")).unwrap())
            .unwrap();
    let claims = json.as_array().unwrap();
    assert_eq!(claims.len(), 4);
    for claim in claims {
        let verdict = claim["verdict"].as_str().unwrap();
        assert!(["Held", "DirectionOnly", "NotHeld"].contains(&verdict));
    }
    std::fs::remove_dir_all(&out).unwrap();
}
