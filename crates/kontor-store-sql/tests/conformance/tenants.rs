//! Tenants and API clients in the control database.

use kontor_domain::tenant::{Scope, Scopes, TenantName};
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, CertificateBinding, CertificateThumbprint, TenantId};
use kontor_store::{MAX_CLIENT_CERTIFICATES, NewApiClient, NewTenant, SecretHash, StoreError};
use kontor_test_support::TestStores;

pub fn new_tenant(name: &str) -> (NewTenant, NewApiClient) {
    let tenant = NewTenant {
        id: TenantId::generate(),
        name: TenantName::parse(name).unwrap(),
        created_at: Timestamp::now(),
    };
    let client = new_client(&tenant.id);
    (tenant, client)
}

fn new_client(tenant: &TenantId) -> NewApiClient {
    NewApiClient {
        id: ApiClientId::generate(),
        tenant_id: tenant.clone(),
        secret_hash: SecretHash(format!("sha256:{}", "ab".repeat(32))),
        scopes: Scopes::all(),
        created_at: Timestamp::now(),
    }
}

pub async fn tenant_is_created_with_its_first_client(stores: TestStores) {
    let control = stores.control();
    let (tenant, client) = new_tenant("Acme Budget");
    let created = control.create_tenant(&tenant, &client).await.unwrap();
    assert_eq!(created.id, tenant.id);

    let read = control.tenant(&tenant.id).await.unwrap();
    assert_eq!(read.name.as_str(), "Acme Budget");
    assert_eq!(read.created_at, tenant.created_at);

    let (stored, hash) = control.client_with_secret(&client.id).await.unwrap();
    assert_eq!(stored.tenant_id, tenant.id);
    assert_eq!(stored.scopes, Scopes::all());
    assert!(stored.is_active());
    assert_eq!(hash, client.secret_hash);

    let tenants = control.list_tenants().await.unwrap();
    assert_eq!(tenants.len(), 1);
    assert!(matches!(
        control.tenant(&TenantId::generate()).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn client_needs_an_existing_tenant(stores: TestStores) {
    let control = stores.control();
    let orphan = new_client(&TenantId::generate());
    assert!(matches!(
        control.create_client(&orphan).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        control.client(&orphan.id).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn revocation_keeps_the_first_time(stores: TestStores) {
    let control = stores.control();
    let (tenant, client) = new_tenant("Acme");
    control.create_tenant(&tenant, &client).await.unwrap();
    let first = Timestamp::from_unix_micros(1_000_000);
    let revoked = control.revoke_client(&client.id, first).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(first));
    let again = control
        .revoke_client(&client.id, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(first));
    assert!(!control.client(&client.id).await.unwrap().is_active());
    assert!(matches!(
        control.revoke_client(&ApiClientId::generate(), first).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn clients_are_listed_per_tenant(stores: TestStores) {
    let control = stores.control();
    let (a, a_client) = new_tenant("A");
    let (b, b_client) = new_tenant("B");
    control.create_tenant(&a, &a_client).await.unwrap();
    control.create_tenant(&b, &b_client).await.unwrap();
    let mut extra = new_client(&a.id);
    extra.scopes = [Scope::UsersRead].into_iter().collect();
    control.create_client(&extra).await.unwrap();

    let a_clients = control.list_clients(&a.id).await.unwrap();
    let ids: Vec<_> = a_clients.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a_client.id) && ids.contains(&extra.id));
    let b_clients = control.list_clients(&b.id).await.unwrap();
    assert_eq!(b_clients.len(), 1);
    assert_eq!(b_clients[0].id, b_client.id);
    let read_only = a_clients.iter().find(|c| c.id == extra.id).unwrap();
    assert!(read_only.scopes.contains(Scope::UsersRead));
    assert!(!read_only.scopes.contains(Scope::UsersWrite));
}

pub async fn redirect_uris_are_replaced_whole_per_tenant(stores: TestStores) {
    let control = stores.control();
    let (a, a_client) = new_tenant("A");
    let (b, b_client) = new_tenant("B");
    control.create_tenant(&a, &a_client).await.unwrap();
    control.create_tenant(&b, &b_client).await.unwrap();
    assert!(control.redirect_uris(&a.id).await.unwrap().is_empty());

    let now = Timestamp::now();
    let first = vec![
        "https://b.example/linked".to_owned(),
        "https://a.example/linked".to_owned(),
        "https://b.example/linked".to_owned(),
    ];
    control.set_redirect_uris(&a.id, &first, now).await.unwrap();
    assert_eq!(
        control.redirect_uris(&a.id).await.unwrap(),
        ["https://b.example/linked", "https://a.example/linked"],
        "in the order given, repeats once"
    );
    assert!(control.redirect_uris(&b.id).await.unwrap().is_empty());

    let second = vec!["https://c.example/".to_owned()];
    control
        .set_redirect_uris(&a.id, &second, now)
        .await
        .unwrap();
    assert_eq!(
        control.redirect_uris(&a.id).await.unwrap(),
        ["https://c.example/"]
    );
    control.set_redirect_uris(&a.id, &[], now).await.unwrap();
    assert!(control.redirect_uris(&a.id).await.unwrap().is_empty());

    assert!(matches!(
        control
            .set_redirect_uris(&TenantId::generate(), &second, now)
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn certificates_are_bound_per_client(stores: TestStores) {
    let control = stores.control();
    let (tenant, client) = new_tenant("Acme");
    control.create_tenant(&tenant, &client).await.unwrap();
    let other = new_client(&tenant.id);
    control.create_client(&other).await.unwrap();
    assert!(
        control
            .client_certificates(&client.id)
            .await
            .unwrap()
            .is_empty()
    );

    let first = CertificateThumbprint::of_der(b"first");
    let second = CertificateThumbprint::of_der(b"second");
    let at = Timestamp::from_unix_micros(1_000_000);
    assert!(
        control
            .bind_certificate(&client.id, &first, at)
            .await
            .unwrap()
    );
    assert!(
        !control
            .bind_certificate(&client.id, &first, Timestamp::now())
            .await
            .unwrap(),
        "binding twice changes nothing"
    );
    let later = Timestamp::from_unix_micros(2_000_000);
    assert!(
        control
            .bind_certificate(&client.id, &second, later)
            .await
            .unwrap()
    );
    let bound = control.client_certificates(&client.id).await.unwrap();
    assert_eq!(
        bound,
        [
            CertificateBinding {
                thumbprint: first,
                bound_at: at
            },
            CertificateBinding {
                thumbprint: second,
                bound_at: later
            },
        ]
    );
    assert!(
        control
            .client_certificates(&other.id)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(
        control
            .unbind_certificate(&client.id, &first)
            .await
            .unwrap()
    );
    assert!(
        !control
            .unbind_certificate(&client.id, &first)
            .await
            .unwrap()
    );
    assert!(
        !control
            .unbind_certificate(&other.id, &second)
            .await
            .unwrap()
    );
    let bound = control.client_certificates(&client.id).await.unwrap();
    assert_eq!(bound.len(), 1);
    assert_eq!(bound[0].thumbprint, second);

    assert!(matches!(
        control
            .bind_certificate(&ApiClientId::generate(), &first, at)
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn a_client_has_a_bounded_number_of_certificates(stores: TestStores) {
    let control = stores.control();
    let (tenant, client) = new_tenant("Acme");
    control.create_tenant(&tenant, &client).await.unwrap();
    let now = Timestamp::now();
    for i in 0..MAX_CLIENT_CERTIFICATES {
        let thumbprint = CertificateThumbprint::of_der(&i.to_be_bytes());
        assert!(
            control
                .bind_certificate(&client.id, &thumbprint, now)
                .await
                .unwrap()
        );
    }
    let one_more = CertificateThumbprint::of_der(b"one more");
    assert!(matches!(
        control.bind_certificate(&client.id, &one_more, now).await,
        Err(StoreError::Conflict { .. })
    ));
    let bound = control.client_certificates(&client.id).await.unwrap();
    assert_eq!(bound.len(), MAX_CLIENT_CERTIFICATES);
    assert!(bound.iter().all(|b| b.thumbprint != one_more));
}

pub async fn branding_is_replaced_whole_per_tenant(stores: TestStores) {
    use kontor_domain::branding::{AccentColor, Branding, LogoUrl};
    let control = stores.control();
    let (acme, client) = new_tenant("Acme Budget");
    control.create_tenant(&acme, &client).await.unwrap();
    let (other, client) = new_tenant("Other");
    control.create_tenant(&other, &client).await.unwrap();

    assert_eq!(
        control.branding(&acme.id).await.unwrap(),
        Branding::default()
    );
    let full = Branding {
        display_name: Some(TenantName::parse("Acme").unwrap()),
        logo_url: Some(LogoUrl::parse("https://cdn.acme.example/logo.svg").unwrap()),
        accent_color: Some(AccentColor::parse("#14d").unwrap()),
    };
    control
        .set_branding(&acme.id, &full, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(control.branding(&acme.id).await.unwrap(), full);
    assert_eq!(
        control.branding(&other.id).await.unwrap(),
        Branding::default()
    );

    // A part stored behind the store's back that no longer passes is left out; the rest stays.
    sqlx::query("UPDATE tenant_branding SET logo_url = $1 WHERE tenant_id = $2")
        .bind("javascript:alert(1)")
        .bind(acme.id.as_str())
        .execute(&stores.raw_control_pool())
        .await
        .unwrap();
    assert_eq!(
        control.branding(&acme.id).await.unwrap(),
        Branding {
            logo_url: None,
            ..full.clone()
        }
    );

    // A second write replaces every part, clearing what it leaves out.
    let colour_only = Branding {
        accent_color: Some(AccentColor::parse("#0f766e").unwrap()),
        ..Branding::default()
    };
    control
        .set_branding(&acme.id, &colour_only, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(control.branding(&acme.id).await.unwrap(), colour_only);

    let nobody = TenantId::generate();
    assert!(matches!(
        control.branding(&nobody).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        control.set_branding(&nobody, &full, Timestamp::now()).await,
        Err(StoreError::NotFound)
    ));
}
