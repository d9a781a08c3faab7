//! The operational tables: problems are counted again, not duplicated; status is replaced.

use store::{DigestSeen, IngestFinding, IntegrationStatus, MessageProblem};

#[test]
fn message_problems_are_upserted_and_cleared() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let mut p = MessageProblem {
            queue: "q".into(),
            message_id: "m1".into(),
            reason: "not_json".into(),
            detail: "expected value".into(),
            body: "é".repeat(40_000), // 80 KB: cut below 64 KiB at a char boundary
            receive_count: 1,
            first_seen: 10,
            last_seen: 10,
        };
        store.state().record_message_problem(&p).unwrap();
        p.receive_count = 3;
        p.last_seen = 20;
        p.first_seen = 20;
        store.state().record_message_problem(&p).unwrap();
        let got = store.state().message_problems().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].receive_count, got[0].first_seen, got[0].last_seen), (3, 10, 20));
        assert!(got[0].body.len() <= 64 << 10 && got[0].body.chars().all(|c| c == 'é'));
        store.state().clear_message_problem("q", "m1").unwrap();
        assert!(store.state().message_problems().unwrap().is_empty());
    }
}

#[test]
fn findings_count_occurrences_and_digests_are_kept_once() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let f = IngestFinding {
            kind: "object_missing".into(),
            account: "prod".into(),
            bucket: "b".into(),
            key: "k".into(),
            detail: "NoSuchKey".into(),
            first_seen: 5,
            last_seen: 5,
            occurrences: 1,
        };
        store.state().record_finding(&f).unwrap();
        store.state().record_finding(&IngestFinding { last_seen: 9, ..f.clone() }).unwrap();
        let got = store.state().findings().unwrap();
        assert_eq!((got.len(), got[0].occurrences, got[0].first_seen, got[0].last_seen), (1, 2, 5, 9));

        let d = DigestSeen { account: "prod".into(), bucket: "b".into(), key: "d1".into(), size: Some(7), seen_at: 1 };
        store.state().record_digest(&d).unwrap();
        store.state().record_digest(&DigestSeen { seen_at: 2, ..d.clone() }).unwrap();
        assert_eq!(store.state().digests_seen().unwrap(), vec![d.clone()]);
        let later = DigestSeen { key: "d2".into(), seen_at: 5, ..d.clone() };
        store.state().record_digest(&later).unwrap();
        assert_eq!(store.state().digests_seen_after(0).unwrap(), vec![d, later.clone()]);
        assert_eq!(store.state().digests_seen_after(1).unwrap(), vec![later]);
        assert!(store.state().digests_seen_after(5).unwrap().is_empty());
    }
}

#[test]
fn integration_status_is_replaced_per_account_and_region() {
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let a =
            IntegrationStatus { account: "prod".into(), region: "us-east-1".into(), objects: 1, ..Default::default() };
        store.state().put_integration_status(&a).unwrap();
        store.state().put_integration_status(&IntegrationStatus { objects: 2, ..a.clone() }).unwrap();
        store.state().put_integration_status(&IntegrationStatus { region: String::new(), ..a.clone() }).unwrap();
        let got = store.state().integration_status().unwrap();
        assert_eq!(
            got.iter().map(|s| (s.region.as_str(), s.objects)).collect::<Vec<_>>(),
            vec![("", 1), ("us-east-1", 2)]
        );
    }
}

#[test]
fn integrity_chains_only_move_forward_and_findings_are_new_once() {
    use store::{IntegrityChain, IntegrityFinding, Silence};
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let chain = IntegrityChain {
            account: "prod".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            trail: "main".into(),
            newest_key: Some("d2".into()),
            newest_end: Some(2_000),
            newest_log: Some(1_900),
            verified_at: 10,
        };
        store.state().record_integrity_chains(std::slice::from_ref(&chain)).unwrap();
        // A later run over a window that starts after the newest digest sees nothing newer.
        store
            .state()
            .record_integrity_chains(&[IntegrityChain {
                newest_key: None,
                newest_end: None,
                newest_log: None,
                verified_at: 20,
                ..chain.clone()
            }])
            .unwrap();
        // An older digest does not move the chain back.
        store
            .state()
            .record_integrity_chains(&[IntegrityChain {
                newest_key: Some("d1".into()),
                newest_end: Some(1_000),
                newest_log: Some(900),
                verified_at: 30,
                ..chain.clone()
            }])
            .unwrap();
        let got = store.state().integrity_chains().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].newest_key.as_deref(), got[0].newest_end, got[0].newest_log, got[0].verified_at),
            (Some("d2"), Some(2_000), Some(1_900), 30)
        );
        store
            .state()
            .record_integrity_chains(&[IntegrityChain {
                newest_key: Some("d3".into()),
                newest_end: Some(3_000),
                newest_log: Some(2_950),
                verified_at: 40,
                ..chain
            }])
            .unwrap();
        let got = store.state().integrity_chains().unwrap();
        assert_eq!(
            (got[0].newest_key.as_deref(), got[0].newest_end, got[0].newest_log),
            (Some("d3"), Some(3_000), Some(2_950))
        );

        let f = IntegrityFinding {
            account: "prod".into(),
            kind: "LOG_MISSING".into(),
            key: "k1".into(),
            detail: "gone".into(),
            first_seen: 5,
            last_seen: 5,
        };
        assert_eq!(store.state().record_integrity_findings(std::slice::from_ref(&f)).unwrap(), vec![f.clone()]);
        let again = IntegrityFinding { first_seen: 9, last_seen: 9, detail: "still gone".into(), ..f.clone() };
        let other = IntegrityFinding { key: "k2".into(), ..f.clone() };
        assert_eq!(store.state().record_integrity_findings(&[again, other.clone()]).unwrap(), vec![other]);
        let all = store.state().integrity_findings().unwrap();
        let k1 = all.iter().find(|x| x.key == "k1").unwrap();
        assert_eq!((k1.first_seen, k1.last_seen, k1.detail.as_str()), (5, 9, "still gone"));

        let s = Silence {
            account: "prod".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            what: "digests".into(),
            since: 7,
            alert_id: Some(3),
        };
        store.state().set_silence(&s).unwrap();
        assert_eq!(store.state().silences().unwrap(), vec![s.clone()]);
        assert_eq!(store.state().clear_silence(&Silence { what: "logs".into(), ..s.clone() }).unwrap(), None);
        assert_eq!(
            store.state().clear_silence(&Silence { account_id: "444455556666".into(), ..s.clone() }).unwrap(),
            None
        );
        assert_eq!(store.state().clear_silence(&s).unwrap(), Some(s));
        assert!(store.state().silences().unwrap().is_empty());
    }
}

#[test]
fn users_sessions_and_api_tokens() {
    use store::{ApiToken, Role, Session, User};
    for (backend, store) in store::testing::backends() {
        eprintln!("backend: {backend}");
        let admin = User {
            name: "admin".into(),
            role: Role::Admin,
            password_hash: "$argon2id$x".into(),
            created_at: 1,
            updated_at: 1,
        };
        assert!(store.state().create_first_user(&admin).unwrap());
        let other = User { name: "second".into(), ..admin.clone() };
        assert!(!store.state().create_first_user(&other).unwrap(), "only when no user exists");
        assert!(store.state().user("second").unwrap().is_none());

        let session = Session {
            token_hash: vec![1; 32],
            user: "admin".into(),
            csrf: "c".into(),
            created_at: 10,
            expires_at: 100,
        };
        store.state().create_session(&session).unwrap();
        let (found, user) = store.state().session(&[1; 32], 50).unwrap().unwrap();
        assert_eq!((found, user.role), (session.clone(), Role::Admin));
        assert!(store.state().session(&[1; 32], 100).unwrap().is_none(), "expired");
        assert!(store.state().session(&[2; 32], 50).unwrap().is_none());

        // A password reset ends the user's sessions.
        store
            .state()
            .put_user(&User { role: Role::Viewer, password_hash: "new".into(), updated_at: 60, ..admin.clone() })
            .unwrap();
        assert!(store.state().session(&[1; 32], 50).unwrap().is_none());
        assert_eq!(store.state().user("admin").unwrap().unwrap().role, Role::Viewer);

        store.state().create_session(&session).unwrap();
        store.state().delete_session(&[1; 32], 50).unwrap();
        assert!(store.state().session(&[1; 32], 50).unwrap().is_none());

        let token = ApiToken {
            id: 0,
            name: "ci".into(),
            user: "admin".into(),
            token_hash: vec![9; 32],
            created_at: 5,
            last_used: None,
            expires_at: None,
        };
        let id = store.state().create_api_token(&token).unwrap();
        let (used, user) = store.state().use_api_token(&[9; 32], 77).unwrap().unwrap();
        assert_eq!((used.id, used.last_used, user.name.as_str()), (id, Some(77), "admin"));
        assert!(store.state().use_api_token(&[8; 32], 77).unwrap().is_none());
        assert_eq!(store.state().api_tokens(Some("admin")).unwrap().len(), 1);
        assert!(store.state().api_tokens(Some("nobody")).unwrap().is_empty());
        assert!(store.state().delete_api_token(id).unwrap());
        assert!(store.state().use_api_token(&[9; 32], 78).unwrap().is_none());
    }
}
