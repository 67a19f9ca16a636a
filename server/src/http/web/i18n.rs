//! Languages of the pages (English, Serbian in Latin and in Cyrillic script) and times in
//! Europe/Belgrade.
//!
//! Belgrade time is computed with the EU rule that Serbia follows: UTC+01:00, and UTC+02:00
//! from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October. No
//! tz database is needed; the rule has been stable since 1996.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Serbian, Latin script.
    SrLatn,
    /// Serbian, Cyrillic script.
    SrCyrl,
}

impl Lang {
    /// Every language, for the picker.
    pub const ALL: [Lang; 3] = [Lang::En, Lang::SrLatn, Lang::SrCyrl];

    /// BCP 47 code (stored per user, used in `<html lang>`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::SrLatn => "sr-Latn",
            Lang::SrCyrl => "sr-Cyrl",
        }
    }

    /// Parses a code; English for anything unknown.
    pub fn from_code(code: &str) -> Lang {
        Lang::ALL
            .into_iter()
            .find(|l| l.code() == code)
            .unwrap_or(Lang::En)
    }

    /// The language's own name.
    pub fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::SrLatn => "Srpski (latinica)",
            Lang::SrCyrl => "Српски (ћирилица)",
        }
    }

    /// The language an anonymous visitor's browser asks for (`Accept-Language`, in order):
    /// `sr-Latn…` is Serbian Latin, any other `sr…` (`sr`, `sr-RS`, `sr-Cyrl`) Serbian
    /// Cyrillic, the official script; anything else, or nothing, English.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        header.split(',').find_map(|part| {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("sr-latn") {
                Some(Lang::SrLatn)
            } else if tag == "sr" || tag.starts_with("sr-") {
                Some(Lang::SrCyrl)
            } else if tag == "en" || tag.starts_with("en-") {
                Some(Lang::En)
            } else {
                None
            }
        })
    }

    /// Parses a code exactly; `None` for anything unknown.
    pub fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The text of `msg` in this language.
    pub fn t(self, msg: Msg) -> &'static str {
        let (en, lat, cyr) = msg.texts();
        match self {
            Lang::En => en,
            Lang::SrLatn => lat,
            Lang::SrCyrl => cyr,
        }
    }
}

macro_rules! messages {
    ($($name:ident => ($en:literal, $lat:literal, $cyr:literal)),+ $(,)?) => {
        /// The strings of the pages.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Msg { $($name),+ }

        impl Msg {
            /// English, Serbian Latin, Serbian Cyrillic.
            pub fn texts(self) -> (&'static str, &'static str, &'static str) {
                match self { $(Msg::$name => ($en, $lat, $cyr)),+ }
            }
        }
    };
}

messages! {
    SignIn => ("Sign in", "Prijava", "Пријава"),
    SignOut => ("Sign out", "Odjava", "Одјава"),
    UserName => ("User name", "Korisničko ime", "Корисничко име"),
    Password => ("Password", "Lozinka", "Лозинка"),
    BadLogin => ("Wrong name or password.", "Pogrešno ime ili lozinka.", "Погрешно име или лозинка."),
    TooMany => ("Too many attempts; try again in 15 minutes.", "Previše pokušaja; pokušajte ponovo za 15 minuta.", "Превише покушаја; покушајте поново за 15 минута."),
    Cases => ("Cases", "Slučajevi", "Случајеви"),
    Devices => ("Devices", "Uređaji", "Уређаји"),
    Quarantine => ("Quarantine", "Karantin", "Карантин"),
    Language => ("Language", "Jezik", "Језик"),
    Save => ("Save", "Sačuvaj", "Сачувај"),
    SkipToContent => ("Skip to content", "Preskoči na sadržaj", "Прескочи на садржај"),
    Client => ("Client", "Klijent", "Клијент"),
    Status => ("Status", "Status", "Статус"),
    Notes => ("Notes", "Beleške", "Белешке"),
    LastActivity => ("Last activity", "Poslednja aktivnost", "Последња активност"),
    Timeline => ("Timeline", "Hronologija", "Хронологија"),
    VisitNote => ("Visit note", "Beleška o poseti", "Белешка о посети"),
    Task => ("Accompaniment task", "Zadatak pratnje", "Задатак пратње"),
    By => ("by", "autor", "аутор"),
    Device => ("device", "uređaj", "уређај"),
    NewTask => ("New accompaniment task", "Novi zadatak pratnje", "Нови задатак пратње"),
    Purpose => ("Purpose", "Svrha", "Сврха"),
    OfficeKind => ("Kind of office", "Vrsta službe", "Врста службе"),
    OfficeName => ("Office", "Služba", "Служба"),
    OfficeAddress => ("Address", "Adresa", "Адреса"),
    Date => ("Date", "Datum", "Датум"),
    TimeOfDay => ("Time (Belgrade)", "Vreme (Beograd)", "Време (Београд)"),
    Checklist => ("Checklist, one item a line", "Spisak, jedna stavka po redu", "Списак, једна ставка по реду"),
    Assignees => ("Assigned to", "Dodeljeno", "Додељено"),
    CreateTask => ("Create task", "Napravi zadatak", "Направи задатак"),
    User => ("User", "Korisnik", "Корисник"),
    State => ("State", "Stanje", "Стање"),
    LastSync => ("Last sync", "Poslednja sinhronizacija", "Последња синхронизација"),
    LeaseExpiry => ("Lease expires", "Zakup ističe", "Закуп истиче"),
    Receipts => ("Receipts", "Potvrde", "Потврде"),
    Revoke => ("Revoke", "Opozovi", "Опозови"),
    ConfirmRevoke => ("Revoke this device? It will be wiped at its next sync.", "Opozvati ovaj uređaj? Biće obrisan pri sledećoj sinhronizaciji.", "Опозвати овај уређај? Биће обрисан при следећој синхронизацији."),
    YesRevoke => ("Yes, revoke", "Da, opozovi", "Да, опозови"),
    Cancel => ("Cancel", "Otkaži", "Откажи"),
    Release => ("Release into the case", "Pusti u slučaj", "Пусти у случај"),
    Discard => ("Discard", "Odbaci", "Одбаци"),
    NotesAdded => ("Notes it adds or changes", "Beleške koje dodaje ili menja", "Белешке које додаје или мења"),
    NotesDeleted => ("Notes it deletes", "Beleške koje briše", "Белешке које брише"),
    TasksChanged => ("Tasks it adds or changes", "Zadaci koje dodaje ili menja", "Задаци које додаје или мења"),
    TasksDeleted => ("Tasks it deletes", "Zadaci koje briše", "Задаци које брише"),
    FieldsChanged => ("Case fields it changes", "Polja slučaja koja menja", "Поља случаја која мења"),
    Received => ("Received", "Primljeno", "Примљено"),
    Decision => ("Decision", "Odluka", "Одлука"),
    Waiting => ("waiting", "čeka", "чека"),
    Show => ("Show", "Prikaži", "Прикажи"),
    Nothing => ("Nothing here.", "Ovde nema ničega.", "Овде нема ничега."),
    FieldWorkerHome => ("Field workers use the phone app; there is nothing for you here.", "Terenski radnici koriste aplikaciju na telefonu; ovde nema ništa za vas.", "Теренски радници користе апликацију на телефону; овде нема ништа за вас."),
    Users => ("Users", "Korisnici", "Корисници"),
    Audit => ("Audit log", "Dnevnik revizije", "Дневник ревизије"),
    TasksByDay => ("Tasks by day", "Zadaci po danima", "Задаци по данима"),
    AddUser => ("Add user", "Dodaj korisnika", "Додај корисника"),
    RoleLabel => ("Role", "Uloga", "Улога"),
    Active => ("Active", "Aktivan", "Активан"),
    Deactivate => ("Deactivate", "Deaktiviraj", "Деактивирај"),
    ConfirmDeactivate => ("I confirm: deactivate and revoke every device", "Potvrđujem: deaktiviraj i opozovi sve uređaje", "Потврђујем: деактивирај и опозови све уређаје"),
    IssueCode => ("Enrollment code", "Kod za prijavu uređaja", "Код за пријаву уређаја"),
    CodeHint => ("Type this code into the phone within 15 minutes. It is shown only once.", "Unesite ovaj kod u telefon u roku od 15 minuta. Prikazuje se samo jednom.", "Унесите овај код у телефон у року од 15 минута. Приказује се само једном."),
    SetPassword => ("Set password", "Postavi lozinku", "Постави лозинку"),
    ChainIntact => ("Chain check: intact", "Provera lanca: netaknut", "Провера ланца: нетакнут"),
    ChainBroken => ("Chain check: BROKEN at entry", "Provera lanca: PREKINUT kod unosa", "Провера ланца: ПРЕКИНУТ код уноса"),
    ChainHead => ("Head of the chain (write it down or send it elsewhere, to check the log against later)", "Vrh lanca (zapišite ga ili pošaljite drugde, da kasnije proverite dnevnik)", "Врх ланца (запишите га или пошаљите другде, да касније проверите дневник)"),
    ChainOlder => ("Entries from before the audit key (not protected by it)", "Unosi od pre ključa dnevnika (nisu zaštićeni njime)", "Уноси од пре кључа дневника (нису заштићени њиме)"),
    When => ("When", "Kada", "Када"),
    Action => ("Action", "Radnja", "Радња"),
    Detail => ("Detail", "Detalj", "Детаљ"),
    Yes => ("yes", "da", "да"),
    No => ("no", "ne", "не"),
    Done => ("Done.", "Gotovo.", "Готово."),
    ConflictInbox => ("Conflict inbox", "Sukobi izmena", "Сукоби измена"),
    ConflictHint => ("These fields were changed on two devices at the same time. Each value is shown with who wrote it and when; the devices keep showing one of them until you decide. Pick a value or write a new one.", "Ova polja su istovremeno izmenjena na dva uređaja. Svaka vrednost je prikazana sa autorom i vremenom; uređaji prikazuju jednu od njih dok ne odlučite. Izaberite vrednost ili upišite novu.", "Ова поља су истовремено измењена на два уређаја. Свака вредност је приказана са аутором и временом; уређаји приказују једну од њих док не одлучите. Изаберите вредност или упишите нову."),
    NoConflicts => ("No conflicts wait for a decision.", "Nema sukoba koji čekaju odluku.", "Нема сукоба који чекају одлуку."),
    Field => ("Field", "Polje", "Поље"),
    Value => ("Value", "Vrednost", "Вредност"),
    NewValue => ("Or a new value", "Ili nova vrednost", "Или нова вредност"),
    KeepValue => ("Keep this value", "Zadrži ovu vrednost", "Задржи ову вредност"),
    Decide => ("Decide", "Odluči", "Одлучи"),
    Shown => ("shown now", "trenutno prikazano", "тренутно приказано"),
    Consent => ("Consent", "Saglasnost", "Сагласност"),
    RiskLevel => ("Risk level", "Nivo rizika", "Ниво ризика"),
    LegalStatus => ("Legal status", "Pravni status", "Правни статус"),
    Outcome => ("Outcome", "Ishod", "Исход"),
    ConflictsWaiting => ("Conflicting changes wait in the conflict inbox.", "Sukobljene izmene čekaju u sandučetu sukoba.", "Сукобљене измене чекају у сандучету сукоба."),
    ChangeRole => ("Change role", "Promeni ulogu", "Промени улогу"),
    QrHint => ("Or scan this code with the phone.", "Ili skenirajte ovaj kod telefonom.", "Или скенирајте овај код телефоном."),
    Forbidden => ("403 Forbidden: your role may not open this page.", "403 Zabranjeno: vaša uloga ne može da otvori ovu stranicu.", "403 Забрањено: ваша улога не може да отвори ову страницу."),
    CsrfRefused => ("403 Forbidden: the form's security token is missing or stale; reload the page.", "403 Zabranjeno: bezbednosni token obrasca nedostaje ili je zastareo; ponovo učitajte stranicu.", "403 Забрањено: безбедносни токен обрасца недостаје или је застарео; поново учитајте страницу."),
    NotFound => ("404 Not found.", "404 Nije pronađeno.", "404 Није пронађено."),
    BadRequest => ("400 Bad request", "400 Neispravan zahtev", "400 Неисправан захтев"),
    ServerFailure => ("Something went wrong on the server.", "Došlo je do greške na serveru.", "Дошло је до грешке на серверу."),
    AlreadyResolved => ("That conflict was already resolved.", "Taj sukob je već rešen.", "Тај сукоб је већ решен."),
    LastAdmin => ("The last active admin cannot lose the admin role.", "Poslednji aktivni administrator ne može izgubiti tu ulogu.", "Последњи активни администратор не може изгубити ту улогу."),
    BackHome => ("Back to fieldcase", "Nazad na fieldcase", "Назад на fieldcase"),
    LiveUpdates => ("New notes appear here by themselves.", "Nove beleške se ovde pojavljuju same.", "Нове белешке се овде појављују саме."),
    Team => ("Team", "Tim", "Тим"),
    AwaitingConfirmation => ("waiting for confirmation", "čeka potvrdu", "чека потврду"),
    FingerprintOnPhone => ("Key fingerprint shown on the phone", "Otisak ključa prikazan na telefonu", "Отисак кључа приказан на телефону"),
    KeyFingerprint => ("Key fingerprint", "Otisak ključa", "Отисак кључа"),
    Confirm => ("Confirm", "Potvrdi", "Потврди"),
    FingerprintMismatch => ("That is not this device's key fingerprint. If the phone in hand shows another one, someone else used the code: revoke this device and issue a new code.", "To nije otisak ključa ovog uređaja. Ako telefon u ruci pokazuje drugi, neko drugi je iskoristio kod: opozovite ovaj uređaj i izdajte novi kod.", "То није отисак кључа овог уређаја. Ако телефон у руци показује други, неко други је искористио код: опозовите овај уређај и издајте нови код."),
    LastBackup => ("Last backup", "Poslednja rezervna kopija", "Последња резервна копија"),
    NoBackupYet => ("none taken by this office yet (set backup_every_hours, backup_dir and backup_recipients)", "ova kancelarija još nije napravila nijednu (podesite backup_every_hours, backup_dir i backup_recipients)", "ова канцеларија још није направила ниједну (подесите backup_every_hours, backup_dir и backup_recipients)"),
    BackupOk => ("succeeded", "uspela", "успела"),
    BackupFailed => ("FAILED", "NIJE USPELA", "НИЈЕ УСПЕЛА"),
    EditedBy => ("edited by", "izmenio/la", "изменио/ла"),
    Teams => ("Teams", "Timovi", "Тимови"),
    Members => ("Members", "Članovi", "Чланови"),
    NewTeam => ("New team", "Novi tim", "Нови тим"),
    CreateTeam => ("Create team", "Napravi tim", "Направи тим"),
    AddMember => ("Add to team", "Dodaj u tim", "Додај у тим"),
    RemoveMember => ("Take off the team", "Ukloni iz tima", "Уклони из тима"),
    MoveCase => ("Move to team", "Premesti u tim", "Премести у тим"),
    OutsideTeam => ("403: this case belongs to a team you are not on.", "403: ovaj slučaj pripada timu u kome niste.", "403: овај случај припада тиму у коме нисте."),
    BreakGlassIntro => ("If you must read it now (an emergency, the team cannot be reached), open a break-glass read: say why. It stays open for 30 minutes, lets you read but not change, is written to the audit log and is shown to the case's team.", "Ako morate da ga pročitate sada (hitan slučaj, tim nije dostupan), otvorite čitanje u nuždi: navedite razlog. Ostaje otvoreno 30 minuta, dozvoljava čitanje ali ne i izmene, upisuje se u dnevnik revizije i prikazuje se timu slučaja.", "Ако морате да га прочитате сада (хитан случај, тим није доступан), отворите читање у нужди: наведите разлог. Остаје отворено 30 минута, дозвољава читање али не и измене, уписује се у дневник ревизије и приказује се тиму случаја."),
    Reason => ("Reason", "Razlog", "Разлог"),
    OpenBreakGlass => ("Open a break-glass read", "Otvori čitanje u nuždi", "Отвори читање у нужди"),
    BreakGlassOpenUntil => ("You are reading this case outside your teams (break-glass read) until", "Čitate ovaj slučaj van svojih timova (čitanje u nuždi) do", "Читате овај случај ван својих тимова (читање у нужди) до"),
    BreakGlassReads => ("Read outside the team", "Čitanja van tima", "Читања ван тима"),
    DuressAlert => ("DURESS: a phone of this worker was opened with her duress PIN. The phone destroyed its case data and has been revoked. Reach her by the agreed safe channel now.", "PRINUDA: telefon ove radnice otvoren je njenim PIN-om za prinudu. Telefon je uništio podatke o slučajevima i opozvan je. Odmah je kontaktirajte dogovorenim bezbednim kanalom.", "ПРИНУДА: телефон ове раднице отворен је њеним ПИН-ом за принуду. Телефон је уништио податке о случајевима и опозван је. Одмах је контактирајте договореним безбедним каналом."),
    Acknowledge => ("Acknowledge", "Potvrdi prijem", "Потврди пријем"),
}

/// Belgrade's UTC offset at the instant `t`. Total over every time `time` can hold: core keeps
/// the times of cases between 1900 and 2199, but the office shows what it is given and must not
/// fail on a time near the ends of the range, where converting overflows.
pub(crate) fn belgrade_offset(t: OffsetDateTime) -> UtcOffset {
    let year = t
        .checked_to_offset(UtcOffset::UTC)
        .map_or(t.year(), |u| u.year());
    let start = last_sunday_1utc(year, Month::March);
    let end = last_sunday_1utc(year, Month::October);
    let hours = match (start, end) {
        (Some(s), Some(e)) if t >= s && t < e => 2,
        _ => 1,
    };
    UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC)
}

fn last_sunday_1utc(year: i32, month: Month) -> Option<OffsetDateTime> {
    let mut day = Date::from_calendar_date(year, month, 31).ok()?;
    while day.weekday() != Weekday::Sunday {
        day = day.previous_day()?;
    }
    Some(PrimitiveDateTime::new(day, Time::from_hms(1, 0, 0).ok()?).assume_utc())
}

/// `t` in Belgrade time as `YYYY-MM-DD HH:MM` (as it was written where Belgrade time cannot
/// hold it, past the end of the year 9999).
pub(crate) fn belgrade(t: OffsetDateTime) -> String {
    let l = t.checked_to_offset(belgrade_offset(t)).unwrap_or(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        l.year(),
        u8::from(l.month()),
        l.day(),
        l.hour(),
        l.minute()
    )
}

/// Unix seconds in Belgrade time, or a dash.
pub(crate) fn belgrade_unix(secs: Option<i64>) -> String {
    secs.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .map(belgrade)
        .unwrap_or_else(|| "—".to_owned())
}

/// A wall-clock date and time in Belgrade as an instant.
pub(crate) fn from_belgrade(date: Date, time: Time) -> OffsetDateTime {
    let local = PrimitiveDateTime::new(date, time);
    // Guess with winter time, then correct with the offset in force at that instant.
    let guess = local.assume_offset(UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC));
    local.assume_offset(belgrade_offset(guess))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_at_the_ends_of_the_range_are_shown_not_a_panic() {
        for t in [
            datetime!(9999-12-31 23:30 UTC),
            datetime!(9999-12-31 23:59:59 -01:00),
            datetime!(-9999-01-01 00:00 UTC),
            datetime!(-9999-01-01 00:00 +05:00),
        ] {
            let shown = belgrade(t);
            assert!(shown.contains(':'), "{shown}");
        }
        assert_eq!(
            belgrade(datetime!(9999-12-31 23:30 UTC)),
            "9999-12-31 23:30"
        );
    }
    use time::macros::datetime;

    #[test]
    fn summer_and_winter() {
        assert_eq!(
            belgrade(datetime!(2026-01-15 12:00 UTC)),
            "2026-01-15 13:00"
        );
        assert_eq!(
            belgrade(datetime!(2026-07-15 12:00 UTC)),
            "2026-07-15 14:00"
        );
        // 2026: DST from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(
            belgrade(datetime!(2026-03-29 00:59 UTC)),
            "2026-03-29 01:59"
        );
        assert_eq!(
            belgrade(datetime!(2026-03-29 01:00 UTC)),
            "2026-03-29 03:00"
        );
        assert_eq!(
            belgrade(datetime!(2026-10-25 00:59 UTC)),
            "2026-10-25 02:59"
        );
        assert_eq!(
            belgrade(datetime!(2026-10-25 01:00 UTC)),
            "2026-10-25 02:00"
        );
        let t = from_belgrade(
            time::macros::date!(2026 - 07 - 01),
            time::macros::time!(10:00),
        );
        assert_eq!(t, datetime!(2026-07-01 08:00 UTC));
    }

    #[test]
    fn browser_languages() {
        assert_eq!(
            Lang::from_accept_language("sr-RS,sr;q=0.9,en;q=0.8"),
            Some(Lang::SrCyrl)
        );
        assert_eq!(Lang::from_accept_language("sr-Latn-RS"), Some(Lang::SrLatn));
        assert_eq!(
            Lang::from_accept_language("de-DE,en-US;q=0.5"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("de"), None);
        assert_eq!(Lang::parse("sr-Cyrl"), Some(Lang::SrCyrl));
        assert_eq!(Lang::parse("xx"), None);
    }

    #[test]
    fn languages() {
        assert_eq!(Lang::from_code("sr-Cyrl").t(Msg::Cases), "Случајеви");
        assert_eq!(Lang::from_code("xx"), Lang::En);
    }
}
