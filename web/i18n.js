// i18n.js — the page's labels in the six languages of the server's
// catalogues (src/api/messages): en, no, sv, da, de, nl. Messages from the
// server come in the chosen language already (SO-Language); these are the
// page's own words. A key a language lacks falls back to English.

export const LANGS = { en: 'English', no: 'Norsk', sv: 'Svenska', da: 'Dansk', de: 'Deutsch', nl: 'Nederlands' };

const T = {
  en: {
    title: 'crmblob pictures', signIn: 'Sign in', signOut: 'Sign out', user: 'User name',
    password: 'Password', language: 'Language', timeZone: 'Time zone',
    Person: 'Persons', Contact: 'Contacts', Product: 'Products', Project: 'Projects',
    search: 'Search by name', find: 'Search', previous: 'Previous', next: 'Next',
    pageOf: 'Page {0}', none: 'Nothing here yet.', newEntity: 'New', create: 'Create',
    cancel: 'Cancel', back: 'Back to the list', picture: 'Picture', noPicture: 'No picture',
    dropHere: 'Drop a picture here, or', chooseFile: 'choose a file', upload: 'Upload',
    uploading: 'Uploading…', replace: 'Replace picture', deletePicture: 'Delete picture',
    deleteEntity: 'Delete', confirmDelete: 'Delete this?', save: 'Save', saved: 'Saved.',
    record: 'BLOB record', description: 'Description', extraInfo: 'Extra info',
    conceptualType: 'Conceptual type', blobId: 'BLOB id', mimeType: 'Type', size: 'Size',
    originalSize: 'Original size', createdBy: 'Created by', createdDate: 'Created',
    updatedBy: 'Updated by', updatedDate: 'Updated', firstname: 'First name',
    lastname: 'Last name', name: 'Name', readOnly: 'You may look, not change.',
    thumbOf: 'Picture of {0}', bytes: '{0} bytes', id: 'Id', signedInAs: 'Signed in as {0}',
  },
  no: {
    title: 'crmblob bilder', signIn: 'Logg inn', signOut: 'Logg ut', user: 'Brukernavn',
    password: 'Passord', language: 'Språk', timeZone: 'Tidssone',
    Person: 'Personer', Contact: 'Firmaer', Product: 'Produkter', Project: 'Prosjekter',
    search: 'Søk etter navn', find: 'Søk', previous: 'Forrige', next: 'Neste',
    pageOf: 'Side {0}', none: 'Ingenting her ennå.', newEntity: 'Ny', create: 'Opprett',
    cancel: 'Avbryt', back: 'Tilbake til listen', picture: 'Bilde', noPicture: 'Ikke noe bilde',
    dropHere: 'Slipp et bilde her, eller', chooseFile: 'velg en fil', upload: 'Last opp',
    uploading: 'Laster opp…', replace: 'Erstatt bildet', deletePicture: 'Slett bildet',
    deleteEntity: 'Slett', confirmDelete: 'Slette dette?', save: 'Lagre', saved: 'Lagret.',
    record: 'BLOB-post', description: 'Beskrivelse', extraInfo: 'Tilleggsinformasjon',
    conceptualType: 'Begrepstype', blobId: 'BLOB-id', mimeType: 'Type', size: 'Størrelse',
    originalSize: 'Opprinnelig størrelse', createdBy: 'Opprettet av', createdDate: 'Opprettet',
    updatedBy: 'Endret av', updatedDate: 'Endret', firstname: 'Fornavn',
    lastname: 'Etternavn', name: 'Navn', readOnly: 'Du kan se, ikke endre.',
    thumbOf: 'Bilde av {0}', bytes: '{0} byte', id: 'Id', signedInAs: 'Logget inn som {0}',
  },
  sv: {
    title: 'crmblob bilder', signIn: 'Logga in', signOut: 'Logga ut', user: 'Användarnamn',
    password: 'Lösenord', language: 'Språk', timeZone: 'Tidszon',
    Person: 'Personer', Contact: 'Företag', Product: 'Produkter', Project: 'Projekt',
    search: 'Sök på namn', find: 'Sök', previous: 'Föregående', next: 'Nästa',
    pageOf: 'Sida {0}', none: 'Inget här ännu.', newEntity: 'Ny', create: 'Skapa',
    cancel: 'Avbryt', back: 'Tillbaka till listan', picture: 'Bild', noPicture: 'Ingen bild',
    dropHere: 'Släpp en bild här, eller', chooseFile: 'välj en fil', upload: 'Ladda upp',
    uploading: 'Laddar upp…', replace: 'Ersätt bilden', deletePicture: 'Ta bort bilden',
    deleteEntity: 'Ta bort', confirmDelete: 'Ta bort detta?', save: 'Spara', saved: 'Sparat.',
    record: 'BLOB-post', description: 'Beskrivning', extraInfo: 'Extra information',
    conceptualType: 'Begreppstyp', blobId: 'BLOB-id', mimeType: 'Typ', size: 'Storlek',
    originalSize: 'Ursprunglig storlek', createdBy: 'Skapad av', createdDate: 'Skapad',
    updatedBy: 'Ändrad av', updatedDate: 'Ändrad', firstname: 'Förnamn',
    lastname: 'Efternamn', name: 'Namn', readOnly: 'Du kan titta, inte ändra.',
    thumbOf: 'Bild av {0}', bytes: '{0} byte', id: 'Id', signedInAs: 'Inloggad som {0}',
  },
  da: {
    title: 'crmblob billeder', signIn: 'Log ind', signOut: 'Log ud', user: 'Brugernavn',
    password: 'Adgangskode', language: 'Sprog', timeZone: 'Tidszone',
    Person: 'Personer', Contact: 'Firmaer', Product: 'Produkter', Project: 'Projekter',
    search: 'Søg efter navn', find: 'Søg', previous: 'Forrige', next: 'Næste',
    pageOf: 'Side {0}', none: 'Intet her endnu.', newEntity: 'Ny', create: 'Opret',
    cancel: 'Annuller', back: 'Tilbage til listen', picture: 'Billede', noPicture: 'Intet billede',
    dropHere: 'Slip et billede her, eller', chooseFile: 'vælg en fil', upload: 'Upload',
    uploading: 'Uploader…', replace: 'Erstat billedet', deletePicture: 'Slet billedet',
    deleteEntity: 'Slet', confirmDelete: 'Slette dette?', save: 'Gem', saved: 'Gemt.',
    record: 'BLOB-post', description: 'Beskrivelse', extraInfo: 'Ekstra information',
    conceptualType: 'Begrebstype', blobId: 'BLOB-id', mimeType: 'Type', size: 'Størrelse',
    originalSize: 'Oprindelig størrelse', createdBy: 'Oprettet af', createdDate: 'Oprettet',
    updatedBy: 'Ændret af', updatedDate: 'Ændret', firstname: 'Fornavn',
    lastname: 'Efternavn', name: 'Navn', readOnly: 'Du kan se, ikke ændre.',
    thumbOf: 'Billede af {0}', bytes: '{0} byte', id: 'Id', signedInAs: 'Logget ind som {0}',
  },
  de: {
    title: 'crmblob Bilder', signIn: 'Anmelden', signOut: 'Abmelden', user: 'Benutzername',
    password: 'Passwort', language: 'Sprache', timeZone: 'Zeitzone',
    Person: 'Personen', Contact: 'Firmen', Product: 'Produkte', Project: 'Projekte',
    search: 'Nach Namen suchen', find: 'Suchen', previous: 'Zurück', next: 'Weiter',
    pageOf: 'Seite {0}', none: 'Noch nichts hier.', newEntity: 'Neu', create: 'Anlegen',
    cancel: 'Abbrechen', back: 'Zurück zur Liste', picture: 'Bild', noPicture: 'Kein Bild',
    dropHere: 'Bild hier ablegen, oder', chooseFile: 'Datei auswählen', upload: 'Hochladen',
    uploading: 'Wird hochgeladen…', replace: 'Bild ersetzen', deletePicture: 'Bild löschen',
    deleteEntity: 'Löschen', confirmDelete: 'Wirklich löschen?', save: 'Speichern', saved: 'Gespeichert.',
    record: 'BLOB-Datensatz', description: 'Beschreibung', extraInfo: 'Zusatzinformation',
    conceptualType: 'Begriffstyp', blobId: 'BLOB-ID', mimeType: 'Typ', size: 'Größe',
    originalSize: 'Ursprüngliche Größe', createdBy: 'Angelegt von', createdDate: 'Angelegt',
    updatedBy: 'Geändert von', updatedDate: 'Geändert', firstname: 'Vorname',
    lastname: 'Nachname', name: 'Name', readOnly: 'Sie dürfen ansehen, nicht ändern.',
    thumbOf: 'Bild von {0}', bytes: '{0} Byte', id: 'ID', signedInAs: 'Angemeldet als {0}',
  },
  nl: {
    title: 'crmblob afbeeldingen', signIn: 'Aanmelden', signOut: 'Afmelden', user: 'Gebruikersnaam',
    password: 'Wachtwoord', language: 'Taal', timeZone: 'Tijdzone',
    Person: 'Personen', Contact: 'Bedrijven', Product: 'Producten', Project: 'Projecten',
    search: 'Zoeken op naam', find: 'Zoeken', previous: 'Vorige', next: 'Volgende',
    pageOf: 'Pagina {0}', none: 'Nog niets hier.', newEntity: 'Nieuw', create: 'Aanmaken',
    cancel: 'Annuleren', back: 'Terug naar de lijst', picture: 'Afbeelding', noPicture: 'Geen afbeelding',
    dropHere: 'Sleep een afbeelding hierheen, of', chooseFile: 'kies een bestand', upload: 'Uploaden',
    uploading: 'Bezig met uploaden…', replace: 'Afbeelding vervangen', deletePicture: 'Afbeelding verwijderen',
    deleteEntity: 'Verwijderen', confirmDelete: 'Dit verwijderen?', save: 'Opslaan', saved: 'Opgeslagen.',
    record: 'BLOB-record', description: 'Beschrijving', extraInfo: 'Extra informatie',
    conceptualType: 'Conceptueel type', blobId: 'BLOB-id', mimeType: 'Type', size: 'Grootte',
    originalSize: 'Oorspronkelijke grootte', createdBy: 'Gemaakt door', createdDate: 'Gemaakt',
    updatedBy: 'Gewijzigd door', updatedDate: 'Gewijzigd', firstname: 'Voornaam',
    lastname: 'Achternaam', name: 'Naam', readOnly: 'U mag kijken, niet wijzigen.',
    thumbOf: 'Afbeelding van {0}', bytes: '{0} bytes', id: 'Id', signedInAs: 'Aangemeld als {0}',
  },
};

// The language of the browser's first preference the page has, else English
// ("nb"/"nn" are Norwegian, as on the server).
export function browserLang() {
  for (const l of navigator.languages || [navigator.language]) {
    let code = String(l).toLowerCase().split('-')[0];
    if (code === 'nb' || code === 'nn') code = 'no';
    if (code in T) return code;
  }
  return 'en';
}

let current = 'en';
export function setLang(l) { current = l in T ? l : 'en'; }
export function lang() { return current; }

// The text of key in the current language, {0}, {1}... replaced by args.
export function t(key, ...args) {
  const s = T[current][key] ?? T.en[key] ?? key;
  return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)] ?? ''));
}

// The BCP 47 tag for Intl (Norwegian bokmål for "no").
export function locale() { return current === 'no' ? 'nb' : current; }
