//! The SQL both backends share. SQLite and PostgreSQL accept the same `$n` placeholders,
//! `RETURNING` and `ON CONFLICT`, so one body of statements, instantiated per backend by
//! `sql_store!`, keeps them from drifting apart.

macro_rules! sql_store {
    ($store:ident, $db:ty, $backend:literal, $migrator:expr) => {
        use async_trait::async_trait;
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use sqlx::Row;
        use uuid::Uuid;

        use crate::clock::UnixTime;
        use crate::model::{
            AuthCodeRecord, AuthMethod, Client, ClientKind, Grant, PendingRequest, Profile, Redeem, Session,
            SigningKeyRecord, User,
        };
        use crate::oauth::{GrantType, KeyAlg, ScopeSet, TokenHash};
        use crate::store::{
            join, split, PurgeCutoffs, Purged, RefreshRecord, RotatePolicy, Rotation, Store,
            StoreError, ThrottleLimit,
        };

        type DbRow = <$db as sqlx::Database>::Row;

        const CLIENT_COLUMNS: &str = "id, name, kind, secret_hash, auth_method, grant_types, redirect_uris, \
            post_logout_redirect_uris, scopes, resources, access_token_ttl, refresh_idle_ttl, \
            refresh_absolute_ttl, first_party, created_at";
        const USER_COLUMNS: &str = "id, username, password_hash, name, given_name, family_name, \
            email, email_verified, disabled, created_at, updated_at";

        fn corrupt(what: &str) -> StoreError {
            StoreError::Other(format!("stored {what} is malformed"))
        }

        fn client_row(row: &DbRow) -> Result<Client, StoreError> {
            let kind = match row.try_get::<String, _>("kind")?.as_str() {
                "public" => ClientKind::Public,
                "confidential" => ClientKind::Confidential,
                _ => return Err(corrupt("client kind")),
            };
            let grant_types = split(&row.try_get::<String, _>("grant_types")?)
                .iter()
                .map(|g| g.parse::<GrantType>().map_err(|_| corrupt("grant type")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Client {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                kind,
                secret_hash: row.try_get("secret_hash")?,
                auth_method: match row.try_get::<Option<String>, _>("auth_method")? {
                    None => None,
                    Some(m) => Some(AuthMethod::parse(&m).ok_or_else(|| corrupt("auth method"))?),
                },
                grant_types,
                redirect_uris: split(&row.try_get::<String, _>("redirect_uris")?),
                post_logout_redirect_uris: split(&row.try_get::<String, _>("post_logout_redirect_uris")?),
                scopes: ScopeSet::parse(&row.try_get::<String, _>("scopes")?)
                    .map_err(|_| corrupt("scope"))?,
                resources: split(&row.try_get::<String, _>("resources")?),
                access_token_ttl: row.try_get("access_token_ttl")?,
                refresh_idle_ttl: row.try_get("refresh_idle_ttl")?,
                refresh_absolute_ttl: row.try_get("refresh_absolute_ttl")?,
                first_party: row.try_get("first_party")?,
                created_at: row.try_get("created_at")?,
            })
        }

        /// `USER_COLUMNS` as named in a row: bare, or with the `u_` prefix of `REFRESH_COLUMNS`.
        type UserNames = [&'static str; 11];
        const USER_NAMES: UserNames = [
            "id", "username", "password_hash", "name", "given_name", "family_name", "email",
            "email_verified", "disabled", "created_at", "updated_at",
        ];
        const USER_NAMES_U: UserNames = [
            "u_id", "u_username", "u_password_hash", "u_name", "u_given_name", "u_family_name",
            "u_email", "u_email_verified", "u_disabled", "u_created_at", "u_updated_at",
        ];

        fn user_row(row: &DbRow) -> Result<User, StoreError> {
            user_row_named(row, &USER_NAMES)
        }

        fn user_row_named(row: &DbRow, n: &UserNames) -> Result<User, StoreError> {
            let id: String = row.try_get(n[0])?;
            Ok(User {
                id: Uuid::parse_str(&id).map_err(|_| corrupt("user id"))?,
                username: row.try_get(n[1])?,
                password_hash: row.try_get(n[2])?,
                profile: Profile {
                    name: row.try_get(n[3])?,
                    given_name: row.try_get(n[4])?,
                    family_name: row.try_get(n[5])?,
                    email: row.try_get(n[6])?,
                    email_verified: row.try_get(n[7])?,
                },
                disabled: row.try_get(n[8])?,
                created_at: row.try_get(n[9])?,
                updated_at: row.try_get(n[10])?,
            })
        }

        fn key_row(row: &DbRow) -> Result<SigningKeyRecord, StoreError> {
            let alg: String = row.try_get("alg")?;
            Ok(SigningKeyRecord {
                kid: row.try_get("kid")?,
                alg: KeyAlg::parse(&alg).ok_or_else(|| corrupt("key algorithm"))?,
                private_der: row.try_get("private_der")?,
                public_jwk: row.try_get("public_jwk")?,
                created_at: row.try_get("created_at")?,
                activates_at: row.try_get("activates_at")?,
                retired_at: row.try_get("retired_at")?,
            })
        }

        fn pending_row(row: &DbRow) -> Result<PendingRequest, StoreError> {
            Ok(PendingRequest {
                id: row.try_get("id")?,
                session_id: TokenHash(row.try_get("session_id")?),
                client_id: row.try_get("client_id")?,
                request: row.try_get("request")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        }

        fn grant_row(row: &DbRow) -> Result<Grant, StoreError> {
            let user_id: String = row.try_get("user_id")?;
            Ok(Grant {
                id: row.try_get("id")?,
                client_id: row.try_get("client_id")?,
                user_id: Uuid::parse_str(&user_id).map_err(|_| corrupt("user id"))?,
                scope: ScopeSet::parse(&row.try_get::<String, _>("scope")?)
                    .map_err(|_| corrupt("scope"))?,
                auth_time: row.try_get("auth_time")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
            })
        }

        fn refresh_row(row: &DbRow) -> Result<RefreshRecord, StoreError> {
            Ok(RefreshRecord {
                grant: grant_row(row)?,
                grant_revoked: row.try_get::<Option<i64>, _>("g_revoked_at")?.is_some(),
                scope: ScopeSet::parse(&row.try_get::<String, _>("rt_scope")?)
                    .map_err(|_| corrupt("scope"))?,
                issued_at: row.try_get("rt_issued_at")?,
                expires_at: row.try_get("rt_expires_at")?,
                used_at: row.try_get("rt_used_at")?,
                successor_hash: row.try_get::<Option<String>, _>("rt_successor")?.map(TokenHash),
                successor_nonce: row.try_get("rt_nonce")?,
                user: match row.try_get::<Option<String>, _>("u_id")? {
                    Some(_) => Some(user_row_named(row, &USER_NAMES_U)?),
                    None => None,
                },
            })
        }

        /// What `refresh_row` reads: a refresh token `r`, its grant `g` and the grant's user
        /// `u` (left-joined: the user may be gone).
        const REFRESH_COLUMNS: &str = "g.id, g.client_id, g.user_id, g.scope, g.auth_time, \
            g.created_at, g.expires_at, g.revoked_at AS g_revoked_at, r.scope AS rt_scope, \
            r.issued_at AS rt_issued_at, r.expires_at AS rt_expires_at, r.used_at AS rt_used_at, \
            r.successor_hash AS rt_successor, r.successor_nonce AS rt_nonce, \
            u.id AS u_id, u.username AS u_username, u.password_hash AS u_password_hash, \
            u.name AS u_name, u.given_name AS u_given_name, u.family_name AS u_family_name, \
            u.email AS u_email, u.email_verified AS u_email_verified, u.disabled AS u_disabled, \
            u.created_at AS u_created_at, u.updated_at AS u_updated_at";

        /// A refresh token by hash with its grant and user, for `refresh_row`.
        fn refresh_select() -> String {
            format!(
                "SELECT {REFRESH_COLUMNS} FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
                 LEFT JOIN users u ON u.id = g.user_id WHERE r.hash = $1"
            )
        }

        /// Counts one failure against a throttle key, unless it is locked at `now` (then no row
        /// is returned). A window that has passed, or a lock that has run out, starts a fresh
        /// count; reaching `max` locks the key for `lock` seconds. The arguments are the SQL
        /// (placeholders) for the key, now, max, window and lock, and what the inserted row
        /// is selected `from`.
        fn count_failure_sql(key: &str, now: &str, max: &str, window: &str, lock: &str, from: &str) -> String {
            let fresh = format!(
                "(login_throttle.window_start + {window} <= {now} \
                 OR (login_throttle.locked_until > 0 AND login_throttle.locked_until <= {now}))"
            );
            format!(
                "INSERT INTO login_throttle (key, failures, window_start, locked_until) \
                 SELECT {key}, 1, {now}, CASE WHEN 1 >= {max} THEN {now} + {lock} ELSE 0 END {from} \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN {fresh} THEN 1 ELSE login_throttle.failures + 1 END, \
                   window_start = CASE WHEN {fresh} THEN {now} ELSE login_throttle.window_start END, \
                   locked_until = CASE \
                     WHEN (CASE WHEN {fresh} THEN 1 ELSE login_throttle.failures + 1 END) >= {max} \
                       THEN {now} + {lock} \
                     WHEN {fresh} THEN 0 ELSE login_throttle.locked_until END \
                 WHERE login_throttle.locked_until <= {now} \
                 RETURNING key"
            )
        }

        /// Gives one counted failure back to an IP key after a success; a lock that count set
        /// is lifted with it. `$1`: the key, `$2`: the IP limit.
        const GIVE_BACK_SQL: &str = "UPDATE login_throttle SET failures = failures - 1, \
            locked_until = CASE WHEN failures - 1 >= $2 THEN locked_until ELSE 0 END \
            WHERE key = $1 AND failures > 0";

        impl $store {
            /// Revokes every grant of a user and ends their browser sessions.
            async fn end_user_access(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: Uuid,
                now: UnixTime,
            ) -> Result<(), StoreError> {
                sqlx::query("UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                    .bind(id.to_string())
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(id.to_string())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
                let _turn = self.write_turn().await?;
                sqlx::query(
                    "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await?;
                self.setting(name).await?.ok_or_else(|| corrupt("setting"))
            }

            async fn insert_client(&self, c: &Client) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                let grants: Vec<String> = c.grant_types.iter().map(|g| g.as_str().to_owned()).collect();
                sqlx::query(&format!(
                    "INSERT INTO clients ({CLIENT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                ))
                .bind(&c.id)
                .bind(&c.name)
                .bind(c.kind.as_str())
                .bind(&c.secret_hash)
                .bind(c.auth_method.map(|m| m.as_str()))
                .bind(join(&grants))
                .bind(join(&c.redirect_uris))
                .bind(join(&c.post_logout_redirect_uris))
                .bind(c.scopes.to_string())
                .bind(join(&c.resources))
                .bind(c.access_token_ttl)
                .bind(c.refresh_idle_ttl)
                .bind(c.refresh_absolute_ttl)
                .bind(c.first_party)
                .bind(c.created_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
                sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| client_row(&r))
                    .transpose()
            }

            async fn clients(&self) -> Result<Vec<Client>, StoreError> {
                sqlx::query(&format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY created_at, id"))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(client_row)
                    .collect()
            }

            async fn clients_fingerprint(&self) -> Result<(i64, i64, i64), StoreError> {
                let row = sqlx::query(
                    "SELECT COUNT(*) AS n, COALESCE(MAX(created_at), 0) AS latest, \
                     COALESCE(SUM(LENGTH(redirect_uris)), 0) AS uris FROM clients",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok((row.try_get("n")?, row.try_get("latest")?, row.try_get("uris")?))
            }

            async fn registered_redirect_uris(&self) -> Result<Vec<String>, StoreError> {
                let rows: Vec<String> = sqlx::query_scalar("SELECT redirect_uris FROM clients")
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().flat_map(|r| split(r)).collect())
            }

            async fn delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await?;
                let mut tx = self.pool.begin().await?;
                let deleted = sqlx::query("DELETE FROM clients WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query("UPDATE grants SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(deleted > 0)
            }

            async fn insert_user(&self, u: &User) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                sqlx::query(&format!(
                    "INSERT INTO users ({USER_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .bind(u.id.to_string())
                .bind(&u.username)
                .bind(&u.password_hash)
                .bind(&u.profile.name)
                .bind(&u.profile.given_name)
                .bind(&u.profile.family_name)
                .bind(&u.profile.email)
                .bind(u.profile.email_verified)
                .bind(u.disabled)
                .bind(u.created_at)
                .bind(u.updated_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn user(&self, id: Uuid) -> Result<Option<User>, StoreError> {
                sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| user_row(&r))
                    .transpose()
            }

            async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
                sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"))
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| user_row(&r))
                    .transpose()
            }

            async fn users(&self) -> Result<Vec<User>, StoreError> {
                sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(user_row)
                    .collect()
            }

            async fn delete_user(&self, id: Uuid, now: UnixTime) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await?;
                let mut tx = self.pool.begin().await?;
                let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                Self::end_user_access(&mut tx, id, now).await?;
                tx.commit().await?;
                Ok(deleted > 0)
            }

            async fn set_password(&self, id: Uuid, hash: &str, now: UnixTime) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await?;
                let mut tx = self.pool.begin().await?;
                let n = sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                // RFC 6819 §5.2.2.3: a new password evicts whoever held the old one.
                Self::end_user_access(&mut tx, id, now).await?;
                tx.commit().await?;
                Ok(n > 0)
            }

            async fn set_disabled(&self, id: Uuid, disabled: bool, now: UnixTime) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await?;
                let n = sqlx::query("UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1")
                    .bind(id.to_string())
                    .bind(disabled)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn insert_key(&self, k: &SigningKeyRecord) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, created_at, activates_at, retired_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&k.kid)
                .bind(k.alg.as_str())
                .bind(&k.private_der)
                .bind(&k.public_jwk)
                .bind(k.created_at)
                .bind(k.activates_at)
                .bind(k.retired_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
                sqlx::query(
                    "SELECT kid, alg, private_der, public_jwk, created_at, activates_at, retired_at \
                     FROM signing_keys ORDER BY activates_at, created_at, kid",
                )
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(key_row)
                .collect()
            }

            async fn retire_key(&self, kid: &str, now: UnixTime) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await?;
                let n = sqlx::query("UPDATE signing_keys SET retired_at = $2 WHERE kid = $1 AND retired_at IS NULL")
                    .bind(kid)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn create_grant(
                &self,
                g: &Grant,
                refresh: Option<(&TokenHash, UnixTime)>,
            ) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO grants (id, client_id, user_id, scope, auth_time, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&g.id)
                .bind(&g.client_id)
                .bind(g.user_id.to_string())
                .bind(g.scope.to_string())
                .bind(g.auth_time)
                .bind(g.created_at)
                .bind(g.expires_at)
                .execute(&mut *tx)
                .await?;
                if let Some((hash, expires_at)) = refresh {
                    sqlx::query(
                        "INSERT INTO refresh_tokens (hash, grant_id, scope, issued_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&hash.0)
                    .bind(&g.id)
                    .bind(g.scope.to_string())
                    .bind(g.created_at)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn activate_grant(
                &self,
                grant_id: &str,
                expires_at: UnixTime,
                refresh: Option<(&TokenHash, UnixTime)>,
                now: UnixTime,
            ) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await?;
                let mut tx = self.pool.begin().await?;
                let live = sqlx::query(
                    "UPDATE grants SET expires_at = $2, created_at = $3 WHERE id = $1 AND revoked_at IS NULL \
                     RETURNING scope",
                )
                .bind(grant_id)
                .bind(expires_at)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = live else { return Ok(false) };
                let scope: String = row.try_get("scope")?;
                if let Some((hash, rt_expires_at)) = refresh {
                    sqlx::query(
                        "INSERT INTO refresh_tokens (hash, grant_id, scope, issued_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&hash.0)
                    .bind(grant_id)
                    .bind(scope)
                    .bind(now)
                    .bind(rt_expires_at)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn rotate_refresh(
                &self,
                presented: &TokenHash,
                successor: &TokenHash,
                policy: RotatePolicy,
            ) -> Result<Rotation, StoreError> {
                let _turn = self.write_turn().await?;
                let now = policy.now;
                // RFC 9700 §4.14.2: the token is spent by one conditional write; of two
                // concurrent presentations exactly one matches `used_at IS NULL`.
                if let Some(record) = self.spend_refresh(presented, successor, policy).await? {
                    return Ok(Rotation::Rotated(record));
                }
                // Not spent: why, and a reuse revokes the family, in one transaction.
                let mut tx = self.pool.begin().await?;
                let row = sqlx::query(&refresh_select())
                    .bind(&presented.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    return Ok(Rotation::Invalid);
                };
                let record = refresh_row(&row)?;
                if record.grant_revoked || record.grant.expires_at <= now {
                    return Ok(Rotation::Invalid);
                }
                match record.used_at {
                    None => Ok(Rotation::Invalid), // idle-expired
                    // A grace of 0 turns retries off: any second presentation is a reuse. The
                    // successor row exists: the first presentation wrote it.
                    Some(used)
                        if policy.grace_secs > 0
                            && now - used <= policy.grace_secs
                            && record.successor_nonce.is_some() =>
                    {
                        Ok(Rotation::Retried(record))
                    }
                    Some(_) => {
                        sqlx::query("UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                            .bind(&record.grant.id)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(Rotation::Reused)
                    }
                }
            }

            async fn refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, StoreError> {
                sqlx::query(&refresh_select())
                    .bind(&hash.0)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| refresh_row(&r))
                    .transpose()
            }

            async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                sqlx::query("UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(grant_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn grant_revoked(&self, grant_id: &str) -> Result<bool, StoreError> {
                let row = sqlx::query("SELECT revoked_at FROM grants WHERE id = $1")
                    .bind(grant_id)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(r) => Ok(r.try_get::<Option<i64>, _>("revoked_at")?.is_some()),
                    None => Ok(true),
                }
            }

            async fn revoke_access_token(&self, jti: &str, expires_at: UnixTime) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                sqlx::query(
                    "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (jti) DO NOTHING",
                )
                .bind(jti)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn access_token_revoked(
                &self,
                jti: &str,
                grant_id: Option<&str>,
                client_id: Option<&str>,
            ) -> Result<bool, StoreError> {
                // One round trip: the jti deny-list, the grant, and the client's existence.
                let n: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM revoked_access_tokens WHERE jti = $1) \
                     + (SELECT COUNT(*) FROM grants WHERE id = $2 AND revoked_at IS NOT NULL) \
                     + (SELECT CASE WHEN $3 IS NULL OR EXISTS (SELECT 1 FROM clients WHERE id = $3) \
                        THEN 0 ELSE 1 END)",
                )
                .bind(jti)
                .bind(grant_id)
                .bind(client_id)
                .fetch_one(&self.pool)
                .await?;
                Ok(n > 0)
            }

            async fn login_locked_until(
                &self,
                user_key: &str,
                ip_key: &str,
                now: UnixTime,
            ) -> Result<Option<UnixTime>, StoreError> {
                let until: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(locked_until) FROM login_throttle WHERE key = $1 OR key = $2",
                )
                .bind(user_key)
                .bind(ip_key)
                .fetch_one(&self.pool)
                .await?;
                Ok(until.filter(|t| *t > now))
            }

            async fn begin_login_attempt(
                &self,
                user_key: &str,
                ip_key: &str,
                now: UnixTime,
                user: ThrottleLimit,
                ip: ThrottleLimit,
            ) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await?;
                self.count_login_attempt(user_key, ip_key, now, user, ip).await
            }

            async fn login_succeeded(
                &self,
                user_key: &str,
                ip_key: &str,
                ip: ThrottleLimit,
            ) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                self.settle_login(user_key, ip_key, ip).await
            }

            async fn create_session(&self, x: &Session) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&x.id.0)
                .bind(x.user_id.map(|u| u.to_string()))
                .bind(x.auth_time)
                .bind(x.created_at)
                .bind(x.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session(&self, id: &TokenHash, now: UnixTime) -> Result<Option<Session>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, user_id, auth_time, created_at, expires_at FROM sessions WHERE id = $1 AND expires_at > $2",
                )
                .bind(&id.0)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let user_id = match row.try_get::<Option<String>, _>("user_id")? {
                    Some(u) => Some(Uuid::parse_str(&u).map_err(|_| corrupt("user id"))?),
                    None => None,
                };
                Ok(Some(Session {
                    id: TokenHash(row.try_get("id")?),
                    user_id,
                    auth_time: row.try_get("auth_time")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                }))
            }

            async fn delete_session(&self, id: &TokenHash) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await?;
                let n = sqlx::query("DELETE FROM sessions WHERE id = $1").bind(&id.0).execute(&self.pool).await?.rows_affected();
                Ok(n > 0)
            }

            async fn put_pending(&self, r: &PendingRequest) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                sqlx::query(
                    "INSERT INTO auth_requests (id, session_id, client_id, request, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&r.id)
                .bind(&r.session_id.0)
                .bind(&r.client_id)
                .bind(&r.request)
                .bind(r.created_at)
                .bind(r.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn pending(&self, id: &str, now: UnixTime) -> Result<Option<PendingRequest>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, session_id, client_id, request, created_at, expires_at FROM auth_requests \
                     WHERE id = $1 AND expires_at > $2",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| pending_row(&r)).transpose()
            }

            async fn rebind_pending(&self, id: &str, from: &TokenHash, to: &TokenHash) -> Result<bool, StoreError> {
                let _turn = self.write_turn().await?;
                let n = sqlx::query("UPDATE auth_requests SET session_id = $3 WHERE id = $1 AND session_id = $2")
                    .bind(id)
                    .bind(&from.0)
                    .bind(&to.0)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn take_pending(&self, id: &str, session: &TokenHash, now: UnixTime) -> Result<Option<PendingRequest>, StoreError> {
                let _turn = self.write_turn().await?;
                let row = sqlx::query(
                    "DELETE FROM auth_requests WHERE id = $1 AND session_id = $2 AND expires_at > $3 \
                     RETURNING id, session_id, client_id, request, created_at, expires_at",
                )
                .bind(id)
                .bind(&session.0)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| pending_row(&r)).transpose()
            }

            async fn insert_code(&self, c: &AuthCodeRecord) -> Result<(), StoreError> {
                let _turn = self.write_turn().await?;
                let binding = serde_json::to_string(&c.binding).map_err(|e| StoreError::Other(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO auth_codes (hash, grant_id, client_id, user_id, request, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&c.hash.0)
                .bind(&c.grant_id)
                .bind(&c.client_id)
                .bind(c.user_id.to_string())
                .bind(binding)
                .bind(c.created_at)
                .bind(c.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn redeem_code(&self, hash: &TokenHash, now: UnixTime) -> Result<Redeem, StoreError> {
                let _turn = self.write_turn().await?;
                let row = sqlx::query(
                    "UPDATE auth_codes SET consumed_at = $2 \
                     WHERE hash = $1 AND consumed_at IS NULL AND expires_at > $2 \
                     RETURNING hash, grant_id, client_id, user_id, request, created_at, expires_at",
                )
                .bind(&hash.0)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(row) = row {
                    let user_id: String = row.try_get("user_id")?;
                    let binding: String = row.try_get("request")?;
                    return Ok(Redeem::Redeemed(AuthCodeRecord {
                        hash: TokenHash(row.try_get("hash")?),
                        grant_id: row.try_get("grant_id")?,
                        client_id: row.try_get("client_id")?,
                        user_id: Uuid::parse_str(&user_id).map_err(|_| corrupt("user id"))?,
                        binding: serde_json::from_str(&binding).map_err(|_| corrupt("code binding"))?,
                        created_at: row.try_get("created_at")?,
                        expires_at: row.try_get("expires_at")?,
                    }));
                }
                let spent: Option<String> =
                    sqlx::query_scalar("SELECT grant_id FROM auth_codes WHERE hash = $1 AND consumed_at IS NOT NULL")
                        .bind(&hash.0)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(match spent {
                    Some(grant_id) => Redeem::AlreadyUsed { grant_id },
                    None => Redeem::Unknown,
                })
            }

            async fn consent(&self, user_id: Uuid, client_id: &str) -> Result<Option<ScopeSet>, StoreError> {
                let scope: Option<String> =
                    sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
                        .bind(user_id.to_string())
                        .bind(client_id)
                        .fetch_optional(&self.pool)
                        .await?;
                scope.map(|s| ScopeSet::parse(&s).map_err(|_| corrupt("scope"))).transpose()
            }

            async fn merge_consent(
                &self,
                user_id: Uuid,
                client_id: &str,
                scope: &ScopeSet,
                now: UnixTime,
            ) -> Result<ScopeSet, StoreError> {
                let _turn = self.write_turn().await?;
                let mut tx = self.pool.begin().await?;
                // The upsert takes the row's lock (a concurrent merge waits for this one to
                // commit) and returns what it held: nothing yet, or the consent so far.
                let prior: String = sqlx::query_scalar(
                    "INSERT INTO consents (user_id, client_id, scope, created_at) VALUES ($1, $2, '', $3) \
                     ON CONFLICT (user_id, client_id) DO UPDATE SET created_at = consents.created_at \
                     RETURNING scope",
                )
                .bind(user_id.to_string())
                .bind(client_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let merged = ScopeSet::parse(&prior)
                    .map_err(|_| corrupt("scope"))?
                    .union(scope);
                sqlx::query(
                    "UPDATE consents SET scope = $3, created_at = $4 WHERE user_id = $1 AND client_id = $2",
                )
                .bind(user_id.to_string())
                .bind(client_id)
                .bind(merged.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(merged)
            }

            async fn purge_expired(&self, c: PurgeCutoffs) -> Result<Purged, StoreError> {
                let _turn = self.write_turn().await?;
                sqlx::query(
                    "UPDATE refresh_tokens SET successor_nonce = NULL WHERE hash IN \
                     (SELECT hash FROM refresh_tokens WHERE successor_nonce IS NOT NULL AND used_at < $1 LIMIT $2)",
                )
                .bind(c.nonces_before)
                .bind(c.batch)
                .execute(&self.pool)
                .await?;
                let refresh_tokens = sqlx::query(
                    "DELETE FROM refresh_tokens WHERE hash IN \
                     (SELECT hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)",
                )
                .bind(c.now)
                .bind(c.batch)
                .execute(&self.pool)
                .await?
                .rows_affected();
                let grants = sqlx::query(
                    "DELETE FROM grants WHERE id IN \
                     (SELECT id FROM grants WHERE expires_at < $1 LIMIT $2)",
                )
                .bind(c.grants_before)
                .bind(c.batch)
                .execute(&self.pool)
                .await?
                .rows_affected();
                let revoked_access_tokens = sqlx::query(
                    "DELETE FROM revoked_access_tokens WHERE jti IN \
                     (SELECT jti FROM revoked_access_tokens WHERE expires_at < $1 LIMIT $2)",
                )
                .bind(c.now)
                .bind(c.batch)
                .execute(&self.pool)
                .await?
                .rows_affected();
                let throttle = sqlx::query(
                    "DELETE FROM login_throttle WHERE key IN \
                     (SELECT key FROM login_throttle WHERE window_start < $1 AND locked_until < $2 LIMIT $3)",
                )
                .bind(c.throttle_before)
                .bind(c.now)
                .bind(c.batch)
                .execute(&self.pool)
                .await?
                .rows_affected();
                let mut browser = 0;
                for (table, key) in [("sessions", "id"), ("auth_requests", "id"), ("auth_codes", "hash")] {
                    browser += sqlx::query(&format!(
                        "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE expires_at < $1 LIMIT $2)"
                    ))
                    .bind(c.now)
                    .bind(c.batch)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                }
                Ok(Purged { refresh_tokens, grants, revoked_access_tokens, throttle, browser })
            }
        }
    };
}

pub(crate) use sql_store;
