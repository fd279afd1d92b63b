//! The one schema both backends share (migrations in `migrations/`).

diesel::table! {
    events (id) {
        id -> BigInt,
        dedupe_key -> Text,
        event_type -> Text,
        message_type -> Nullable<Text>,
        conversation_key -> Nullable<Text>,
        conversation_id -> Nullable<BigInt>,
        account_id -> Nullable<BigInt>,
        bot_id -> Nullable<BigInt>,
        visitor_key -> Nullable<Text>,
        visitor_id -> Nullable<BigInt>,
        actor_type -> Nullable<Text>,
        actor_email -> Nullable<Text>,
        occurred_at -> Timestamp,
        received_at -> Timestamp,
        summary -> Text,
        raw -> Text,
        handed_to -> Nullable<Text>,
    }
}

diesel::table! {
    conversations (key) {
        key -> Text,
        conversation_id -> Nullable<BigInt>,
        account_id -> Nullable<BigInt>,
        bot_id -> Nullable<BigInt>,
        visitor_key -> Nullable<Text>,
        visitor_id -> Nullable<BigInt>,
        title -> Nullable<Text>,
        channel -> Nullable<Text>,
        conversation_url -> Nullable<Text>,
        visitor_name -> Nullable<Text>,
        visitor_email -> Nullable<Text>,
        visitor_at -> Nullable<Timestamp>,
        status -> Text,
        status_at -> Nullable<Timestamp>,
        assignee_type -> Nullable<Text>,
        assignee_email -> Nullable<Text>,
        assignee_at -> Nullable<Timestamp>,
        created_at -> Nullable<Timestamp>,
        first_event_at -> Timestamp,
        last_event_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        message_count -> BigInt,
        event_count -> BigInt,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    rules (id) {
        id -> BigInt,
        name -> Text,
        enabled -> Bool,
        definition -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    notifications (id) {
        id -> BigInt,
        rule_id -> Nullable<BigInt>,
        rule_name -> Text,
        event_id -> Nullable<BigInt>,
        conversation_key -> Nullable<Text>,
        recipient -> Text,
        template -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        smtp_response -> Nullable<Text>,
        subject -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        message -> Nullable<Text>,
    }
}

diesel::table! {
    admin_sessions (id_hash) {
        id_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    calendars (name) {
        name -> Text,
        definition -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    recipients (email) {
        email -> Text,
        quiet_hours -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    events,
    conversations,
    settings,
    rules,
    notifications,
    admin_sessions,
    calendars,
    recipients
);
