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

diesel::allow_tables_to_appear_in_same_query!(events, conversations, settings);
