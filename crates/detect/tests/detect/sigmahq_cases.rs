//! SigmaHQ CloudTrail rules against events made from each rule's intent: one that must match,
//! and a near miss that must not (the same call failing, from another service, or what the
//! rule's own filter excludes). Rules are found by file name; every rule of the pack has a case.

use detect::RuleSet;
use serde_json::{json, Value};
use test_support::shared_data;

fn ev(source: &str, name: &str) -> Value {
    json!({"eventVersion": "1.09", "eventSource": source, "eventName": name, "eventTime": "2024-03-05T14:10:42Z",
           "eventID": "66666666-7777-4888-9999-aaaaaaaaaaaa", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
           "userAgent": "aws-cli/2.15.0", "recipientAccountId": "111122223333",
           "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "userName": "alice"}})
}

fn with(mut v: Value, path: &[&str], value: Value) -> Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        if cur.get(*p).is_none_or(|x| !x.is_object()) {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = value;
    v
}

/// (rule file stem, must match, must not match)
fn cases() -> Vec<(&'static str, Value, Value)> {
    let failed = |v: Value| with(v, &["errorCode"], json!("AccessDenied"));
    vec![
        (
            "aws_cloudtrail_bedrock_guardrail_deleted",
            ev("bedrock.amazonaws.com", "DeleteGuardrail"),
            ev("bedrock.amazonaws.com", "GetGuardrail"),
        ),
        (
            "aws_cloudtrail_bedrock_guardrail_updated",
            ev("bedrock.amazonaws.com", "UpdateGuardrail"),
            ev("bedrock-agent.amazonaws.com", "UpdateGuardrail"),
        ),
        (
            "aws_cloudtrail_bucket_deleted",
            ev("s3.amazonaws.com", "DeleteBucket"),
            failed(ev("s3.amazonaws.com", "DeleteBucket")),
        ),
        (
            "aws_cloudtrail_console_login_failed_authentication",
            with(ev("signin.amazonaws.com", "ConsoleLogin"), &["errorMessage"], json!("Failed authentication")),
            with(ev("signin.amazonaws.com", "ConsoleLogin"), &["responseElements", "ConsoleLogin"], json!("Success")),
        ),
        (
            "aws_cloudtrail_console_login_success_without_mfa",
            with(
                with(ev("signin.amazonaws.com", "ConsoleLogin"), &["additionalEventData", "MFAUsed"], json!("No")),
                &["responseElements", "ConsoleLogin"],
                json!("Success"),
            ),
            with(
                with(ev("signin.amazonaws.com", "ConsoleLogin"), &["additionalEventData", "MFAUsed"], json!("Yes")),
                &["responseElements", "ConsoleLogin"],
                json!("Success"),
            ),
        ),
        (
            "aws_cloudtrail_disable_logging",
            ev("cloudtrail.amazonaws.com", "StopLogging"),
            ev("cloudtrail.amazonaws.com", "StartLogging"),
        ),
        (
            "aws_cloudtrail_guardduty_detector_deleted_or_updated",
            with(ev("guardduty.amazonaws.com", "UpdateDetector"), &["requestParameters", "enable"], json!("false")),
            with(ev("guardduty.amazonaws.com", "UpdateDetector"), &["requestParameters", "enable"], json!("true")),
        ),
        (
            "aws_cloudtrail_imds_malicious_usage",
            with(
                ev("s3.amazonaws.com", "ListBuckets"),
                &["userIdentity", "arn"],
                json!("arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0123456789abcdef0"),
            ),
            with(
                ev("ssm.amazonaws.com", "UpdateInstanceInformation"),
                &["userIdentity", "arn"],
                json!("arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0123456789abcdef0"),
            ),
        ),
        (
            "aws_cloudtrail_new_acl_entries",
            ev("ec2.amazonaws.com", "CreateNetworkAclEntry"),
            ev("ec2.amazonaws.com", "DescribeNetworkAcls"),
        ),
        (
            "aws_cloudtrail_new_route_added",
            ev("ec2.amazonaws.com", "CreateRoute"),
            ev("ec2.amazonaws.com", "CreateRouteTable"),
        ),
        (
            "aws_cloudtrail_pua_trufflehog",
            with(ev("sts.amazonaws.com", "GetCallerIdentity"), &["userAgent"], json!("TruffleHog")),
            with(ev("sts.amazonaws.com", "GetCallerIdentity"), &["userAgent"], json!("TruffleHog/3.63 (scanner)")),
        ),
        (
            "aws_cloudtrail_region_enabled",
            ev("account.amazonaws.com", "EnableRegion"),
            ev("account.amazonaws.com", "DisableRegion"),
        ),
        (
            "aws_cloudtrail_security_group_change_ingress_egress",
            ev("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
            ev("ec2.amazonaws.com", "DescribeSecurityGroups"),
        ),
        (
            "aws_cloudtrail_security_group_change_loadbalancer",
            ev("elasticloadbalancing.amazonaws.com", "SetSecurityGroups"),
            ev("ec2.amazonaws.com", "SetSecurityGroups"),
        ),
        (
            "aws_cloudtrail_security_group_change_rds",
            ev("rds.amazonaws.com", "CreateDBSecurityGroup"),
            ev("rds.amazonaws.com", "DescribeDBSecurityGroups"),
        ),
        (
            "aws_cloudtrail_ssm_malicious_usage",
            ev("ssm.amazonaws.com", "SendCommand"),
            failed(ev("ssm.amazonaws.com", "SendCommand")),
        ),
        (
            "aws_cloudtrail_vpc_flow_logs_deleted",
            with(ev("ec2.amazonaws.com", "DeleteFlowLogs"), &["errorCode"], json!("Success")),
            failed(ev("ec2.amazonaws.com", "DeleteFlowLogs")),
        ),
        (
            "aws_config_disable_recording",
            ev("config.amazonaws.com", "StopConfigurationRecorder"),
            ev("config.amazonaws.com", "StartConfigurationRecorder"),
        ),
        (
            "aws_console_getsignintoken",
            with(ev("signin.amazonaws.com", "GetSigninToken"), &["userAgent"], json!("python-requests/2.31")),
            with(ev("signin.amazonaws.com", "GetSigninToken"), &["userAgent"], json!("Jersey/${project.version}")),
        ),
        ("aws_delete_identity", ev("ses.amazonaws.com", "DeleteIdentity"), ev("ses.amazonaws.com", "ListIdentities")),
        (
            "aws_delete_saml_provider",
            with(ev("iam.amazonaws.com", "DeleteSAMLProvider"), &["status"], json!("success")),
            with(ev("iam.amazonaws.com", "DeleteSAMLProvider"), &["status"], json!("failure")),
        ),
        (
            "aws_disable_bucket_versioning",
            with(
                ev("s3.amazonaws.com", "PutBucketVersioning"),
                &["requestParameters"],
                json!({"bucketName": "logs", "VersioningConfiguration": {"Status": "Suspended"}}),
            ),
            with(
                ev("s3.amazonaws.com", "PutBucketVersioning"),
                &["requestParameters"],
                json!({"bucketName": "logs", "VersioningConfiguration": {"Status": "Enabled"}}),
            ),
        ),
        (
            "aws_ec2_disable_encryption",
            ev("ec2.amazonaws.com", "DisableEbsEncryptionByDefault"),
            ev("ec2.amazonaws.com", "EnableEbsEncryptionByDefault"),
        ),
        (
            "aws_ec2_import_key_pair_activity",
            ev("ec2.amazonaws.com", "ImportKeyPair"),
            ev("ec2.amazonaws.com", "CreateKeyPair"),
        ),
        (
            "aws_ec2_startup_script_change",
            with(
                ev("ec2.amazonaws.com", "ModifyInstanceAttribute"),
                &["requestParameters", "attribute"],
                json!("userData"),
            ),
            with(
                ev("ec2.amazonaws.com", "ModifyInstanceAttribute"),
                &["requestParameters", "attribute"],
                json!("instanceType"),
            ),
        ),
        (
            "aws_ec2_vm_export_failure",
            with(
                ev("ec2.amazonaws.com", "CreateInstanceExportTask"),
                &["responseElements"],
                json!({"exportTask": {"state": "active"}}),
            ),
            with(
                with(
                    ev("ec2.amazonaws.com", "CreateInstanceExportTask"),
                    &["errorCode"],
                    json!("Client.NotExportable"),
                ),
                &["errorMessage"],
                json!("The instance cannot be exported"),
            ),
        ),
        (
            "aws_ecs_task_definition_cred_endpoint_query",
            with(
                ev("ecs.amazonaws.com", "RegisterTaskDefinition"),
                &["requestParameters", "containerDefinitions"],
                json!([{"name": "x", "command": ["sh", "-c", "curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]}]),
            ),
            with(
                ev("ecs.amazonaws.com", "RegisterTaskDefinition"),
                &["requestParameters", "containerDefinitions"],
                json!([{"name": "x", "command": ["nginx", "-g", "daemon off;"]}]),
            ),
        ),
        (
            "aws_efs_fileshare_modified_or_deleted",
            ev("elasticfilesystem.amazonaws.com", "DeleteFileSystem"),
            ev("elasticfilesystem.amazonaws.com", "CreateFileSystem"),
        ),
        (
            "aws_efs_fileshare_mount_modified_or_deleted",
            ev("elasticfilesystem.amazonaws.com", "DeleteMountTarget"),
            ev("elasticfilesystem.amazonaws.com", "DeleteFileSystem"),
        ),
        (
            "aws_eks_cluster_created_or_deleted",
            ev("eks.amazonaws.com", "DeleteCluster"),
            ev("eks.amazonaws.com", "UpdateClusterConfig"),
        ),
        (
            "aws_elasticache_security_group_created",
            ev("elasticache.amazonaws.com", "CreateCacheSecurityGroup"),
            ev("ec2.amazonaws.com", "CreateCacheSecurityGroup"),
        ),
        (
            "aws_elasticache_security_group_modified_or_deleted",
            ev("elasticache.amazonaws.com", "AuthorizeCacheSecurityGroupIngress"),
            ev("elasticache.amazonaws.com", "CreateCacheSecurityGroup"),
        ),
        (
            "aws_enum_buckets",
            ev("s3.amazonaws.com", "ListBuckets"),
            with(ev("s3.amazonaws.com", "ListBuckets"), &["userIdentity", "type"], json!("AssumedRole")),
        ),
        (
            "aws_guardduty_disruption",
            ev("guardduty.amazonaws.com", "CreateIPSet"),
            ev("guardduty.amazonaws.com", "ListIPSets"),
        ),
        (
            // The rule's filter compares the ARN with the literal text
            // "responseElements.accessKey.userName" (no |fieldref), so every CreateAccessKey matches.
            "aws_iam_backdoor_users_keys",
            with(
                ev("iam.amazonaws.com", "CreateAccessKey"),
                &["responseElements", "accessKey", "userName"],
                json!("bob"),
            ),
            ev("iam.amazonaws.com", "ListAccessKeys"),
        ),
        (
            "aws_iam_s3browser_loginprofile_creation",
            with(
                ev("iam.amazonaws.com", "CreateLoginProfile"),
                &["userAgent"],
                json!("S3 Browser 11.5.7 https://s3browser.com"),
            ),
            ev("iam.amazonaws.com", "CreateLoginProfile"),
        ),
        (
            "aws_iam_s3browser_templated_s3_bucket_policy_creation",
            with(
                with(
                    ev("iam.amazonaws.com", "PutUserPolicy"),
                    &["userAgent"],
                    json!("S3 Browser 11.5.7 https://s3browser.com"),
                ),
                &["requestParameters"],
                json!({"userName": "x", "policyName": "p", "policyDocument":
                    "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\"],\"Resource\":\"arn:aws:s3:::<YOUR-BUCKET-NAME>/*\"}]}"}),
            ),
            with(
                with(
                    ev("iam.amazonaws.com", "PutUserPolicy"),
                    &["userAgent"],
                    json!("S3 Browser 11.5.7 https://s3browser.com"),
                ),
                &["requestParameters"],
                json!({"userName": "x", "policyName": "p", "policyDocument":
                    "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\"],\"Resource\":\"arn:aws:s3:::real-bucket/*\"}]}"}),
            ),
        ),
        (
            "aws_iam_s3browser_user_or_accesskey_creation",
            with(ev("iam.amazonaws.com", "CreateUser"), &["userAgent"], json!("S3 Browser 9.5.5")),
            with(ev("iam.amazonaws.com", "DeleteUser"), &["userAgent"], json!("S3 Browser 9.5.5")),
        ),
        (
            "aws_kms_import_key_material",
            ev("kms.amazonaws.com", "ImportKeyMaterial"),
            ev("kms.amazonaws.com", "GetParametersForImport"),
        ),
        (
            "aws_lambda_function_url",
            ev("lambda.amazonaws.com", "CreateFunctionUrlConfig"),
            ev("lambda.amazonaws.com", "GetFunctionUrlConfig"),
        ),
        (
            "aws_new_lambda_layer_attached",
            with(
                ev("lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2"),
                &["requestParameters", "layers"],
                json!(["arn:aws:lambda:us-east-1:444455556666:layer:backdoor:1"]),
            ),
            with(
                ev("lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2"),
                &["requestParameters", "timeout"],
                json!(30),
            ),
        ),
        (
            "aws_passed_role_to_glue_development_endpoint",
            ev("glue.amazonaws.com", "CreateDevEndpoint"),
            ev("glue.amazonaws.com", "GetDevEndpoints"),
        ),
        (
            "aws_rds_change_master_password",
            with(
                ev("rds.amazonaws.com", "ModifyDBInstance"),
                &["responseElements", "pendingModifiedValues", "masterUserPassword"],
                json!("****"),
            ),
            with(
                ev("rds.amazonaws.com", "ModifyDBInstance"),
                &["responseElements", "pendingModifiedValues", "dBInstanceClass"],
                json!("db.m5.large"),
            ),
        ),
        (
            "aws_rds_dbcluster_actions",
            ev("rds.amazonaws.com", "DeleteDBCluster"),
            ev("rds.amazonaws.com", "DescribeDBClusters"),
        ),
        (
            "aws_rds_public_db_restore",
            with(
                ev("rds.amazonaws.com", "RestoreDBInstanceFromDBSnapshot"),
                &["responseElements", "publiclyAccessible"],
                json!(true),
            ),
            with(
                ev("rds.amazonaws.com", "RestoreDBInstanceFromDBSnapshot"),
                &["responseElements", "publiclyAccessible"],
                json!(false),
            ),
        ),
        (
            "aws_root_account_usage",
            with(ev("iam.amazonaws.com", "ListUsers"), &["userIdentity", "type"], json!("Root")),
            with(
                with(ev("iam.amazonaws.com", "ListUsers"), &["userIdentity", "type"], json!("Root")),
                &["eventType"],
                json!("AwsServiceEvent"),
            ),
        ),
        (
            "aws_route_53_domain_transferred_lock_disabled",
            ev("route53.amazonaws.com", "DisableDomainTransferLock"),
            ev("route53.amazonaws.com", "EnableDomainTransferLock"),
        ),
        (
            "aws_route_53_domain_transferred_to_another_account",
            ev("route53.amazonaws.com", "TransferDomainToAnotherAwsAccount"),
            ev("route53.amazonaws.com", "AcceptDomainTransferFromAnotherAwsAccount"),
        ),
        (
            "aws_s3_data_management_tampering",
            ev("s3.amazonaws.com", "PutBucketLogging"),
            ev("s3.amazonaws.com", "GetBucketLogging"),
        ),
        (
            "aws_securityhub_finding_evasion",
            ev("securityhub.amazonaws.com", "BatchUpdateFindings"),
            ev("securityhub.amazonaws.com", "GetFindings"),
        ),
        (
            "aws_snapshot_backup_exfiltration",
            ev("ec2.amazonaws.com", "ModifySnapshotAttribute"),
            ev("ec2.amazonaws.com", "DescribeSnapshotAttribute"),
        ),
        (
            "aws_sso_idp_change",
            ev("sso-directory.amazonaws.com", "DisableExternalIdPConfigurationForDirectory"),
            ev("sso.amazonaws.com", "ListInstances"),
        ),
        (
            "aws_sts_assumerole_misuse",
            with(
                with(ev("ec2.amazonaws.com", "DescribeInstances"), &["userIdentity", "type"], json!("AssumedRole")),
                &["userIdentity", "sessionContext", "sessionIssuer", "type"],
                json!("Role"),
            ),
            ev("ec2.amazonaws.com", "DescribeInstances"),
        ),
        (
            "aws_sts_getcalleridentity_trufflehog",
            with(ev("sts.amazonaws.com", "GetCallerIdentity"), &["userAgent"], json!("TruffleHog")),
            ev("sts.amazonaws.com", "GetCallerIdentity"),
        ),
        (
            "aws_sts_getsessiontoken_misuse",
            ev("sts.amazonaws.com", "GetSessionToken"),
            with(ev("sts.amazonaws.com", "GetSessionToken"), &["userIdentity", "type"], json!("Root")),
        ),
        (
            "aws_susp_saml_activity",
            ev("iam.amazonaws.com", "UpdateSAMLProvider"),
            ev("sts.amazonaws.com", "AssumeRoleWithWebIdentity"),
        ),
        (
            "aws_update_login_profile",
            with(ev("iam.amazonaws.com", "UpdateLoginProfile"), &["requestParameters", "userName"], json!("bob")),
            with(
                with(ev("iam.amazonaws.com", "UpdateLoginProfile"), &["requestParameters", "userName"], json!("alice")),
                &["userIdentity", "arn"],
                json!("alice"),
            ),
        ),
    ]
}

#[test]
fn every_sigmahq_rule_has_an_intent_case() {
    let stems: std::collections::BTreeSet<String> = cases().into_iter().map(|(s, _, _)| s.to_owned()).collect();
    let mut missing = Vec::new();
    for f in std::fs::read_dir(shared_data("sigma/rules")).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".yml") {
            if !stems.contains(stem) {
                missing.push(stem.to_owned());
            }
        }
    }
    assert!(missing.is_empty(), "SigmaHQ rules without an intent case: {missing:?}");
}

#[test]
fn sigmahq_rules_match_their_intent_and_not_the_near_miss() {
    let dir = shared_data("sigma/rules");
    for (stem, yes, no) in cases() {
        let set = RuleSet::from_yaml_text(&std::fs::read_to_string(dir.join(format!("{stem}.yml"))).unwrap(), stem)
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let rule = &set.rules[0];
        assert!(rule.matches(&yes), "{stem} should match {yes}");
        assert!(!rule.matches(&no), "{stem} should not match {no}");
        // The same through the index and the projection.
        let projected = set.parse_record(yes.to_string().as_bytes()).unwrap();
        assert_eq!(set.matching(&projected).count(), 1, "{stem}");
    }
}
