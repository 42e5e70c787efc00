package SGBodyCases;

# The request body cases, one table for every consumer: the gateway's
# tests send them through nginx (t/60-body.t all of them, t/61-body-
# transport.t those marked transport in every way a body travels) and
# t/63-body-cli.t gives them to sendgrid-integrations-validate, which must
# answer as the gateway does.  A case:
#
#   { name, op => 'create' (POST) or 'update' (PATCH), strict => 0 or 1
#     (sendgrid_strict / --strict), body (undef: no body at all),
#     message => the failures the gateway answers with (undef: valid),
#     transport => 1 (t/61 sends it every way) }
#
#   SGBodyCases::cases()       the cases, in order, each name once
#   SGBodyCases::secrets()     the write_keys and other secrets in the
#                              bodies: none may be found in a log or an
#                              answer
#   SGBodyCases::gateway()     an SGTest with the gateway for the cases
#                              started (localhost, and strict.test with
#                              sendgrid_strict on), its upstream answering
#                              200 $SGBodyCases::MOCK_BODY, the secrets
#                              registered
#   SGBodyCases::request($t, $c)
#                              a case sent to that gateway; the response
#
# Every enum value, write_key lengths in code points, required members,
# types and nulls, unknown members and sendgrid_strict, names in another
# letter case, duplicates, nesting, the limits on member names, bad UTF-8
# and bad JSON, large bodies, PATCH partials.

use strict;
use warnings;

use SGTest qw(json_object create_body invalid_json_at);

my (@CASES, @SECRETS, %NAMES);

sub cases { return @CASES }

sub secrets { return @SECRETS }

# One case; ok => 1 for a valid body, else message => the failures.
sub add {
    my ($c) = @_;
    my $name = $c->{name};

    die "SGBodyCases: $name: ok or message\n"
        unless $c->{ok} xor defined $c->{message};
    die "SGBodyCases: $name: twice\n" if $NAMES{$name}++;

    push @CASES, { name => $name, op => $c->{op} // 'create',
                   strict => $c->{strict} ? 1 : 0, body => $c->{body},
                   message => $c->{message},
                   transport => $c->{transport} ? 1 : 0 };
}

sub secret { push @SECRETS, @_ }

# a fixed answer upstream, so that no response echoes a write_key back
our $MOCK_BODY = '{"mock":"upstream"}';

sub gateway {
    my $t = SGTest->new;
    $t->key_file('global.key', "SG.body-cases-global.0123456789abcdef\n");

    # bodies of up to 1 MB and a bit
    my $keyed = 'sendgrid_api_key_file %%DIR%%/global.key;';
    my $size = 'client_max_body_size 2m;';

    $t->start(SGTest::gateway_server('localhost', $size, location => $keyed)
              . SGTest::gateway_server('strict.test', $size,
                                       location => "$keyed\n"
                                                   . 'sendgrid_strict on;'));

    $t->upstream_response('global', status => 200, body => $MOCK_BODY,
                          headers => [['Content-Type', 'application/json']]);
    $t->secret(@SECRETS);

    return $t;
}

sub request {
    my ($t, $c) = @_;
    my @h = ('Content-Type' => 'application/json');
    unshift @h, Host => 'strict.test' if $c->{strict};

    return $t->request($c->{op} eq 'update'
                       ? (PATCH => '/v3/marketing/integrations/5a1234')
                       : (POST => '/v3/marketing/integrations'),
                       headers => \@h, body => $c->{body});
}

my $WK = 'wk-base-Xy7Qp2Lm';
secret($WK);


# --- helpers ---------------------------------------------------------------

# a create body with the table's write_key (undef removes a member)
sub post { create_body(write_key => $WK, @_) }

sub props {
    my (%o) = @_;
    my %m = (write_key => qq("$WK"), destination_region => '"US"', %o);
    return json_object(write_key => $m{write_key},
                       destination_region => $m{destination_region});
}

sub events { '{"email_events":[' . join(',', @_) . ']}' }

# the offset just after the last occurrence of needle (a duplicate name)
sub after_last {
    my ($body, $needle) = @_;
    my $i = rindex($body, $needle);
    die "no $needle" if $i < 0;
    return $i + length $needle;
}

sub dup {
    my ($name, $body, $needle) = @_;
    return qq(request body has duplicate member "$name" at byte )
           . after_last($body, $needle);
}

sub too_many_names {
    return 'request body exceeds the limit of 1024 member names open at '
           . "once at byte $_[0]";
}

sub too_many_name_bytes {
    return 'request body exceeds the limit of 16384 bytes of member names '
           . "open at once at byte $_[0]";
}


# --- enums -----------------------------------------------------------------

my @EVENTS = qw(drop processed deferred group_unsubscribe bounce delivered
                click unsubscribe open group_resubscribe spamreport
                machine_opened);

add({ name => "event $_", body => post(filters => events(qq("$_"))),
      ok => 1 })
    for @EVENTS;

add({ name => 'all twelve events',
      body => post(filters => events(map { qq("$_") } @EVENTS)), ok => 1 });
add({ name => 'an event twice', body => post(filters => events('"open"',
      '"open"')), ok => 1 });
add({ name => 'no event at all', body => post(filters => events()),
      ok => 1 });
add({ name => 'an event written with an escape',
      body => post(filters => events('"\u006fpen"')), ok => 1 });

add({ name => "region $_", ok => 1,
      body => post(properties => props(destination_region => qq("$_"))) })
    for qw(EU US);

add({ name => 'region written with an escape', ok => 1,
      body => post(properties => props(destination_region => '"\u0045U"')) });
add({ name => 'destination Segment', body => post(), ok => 1 });
add({ name => 'destination written with an escape',
      body => post(destination => '"\u0053egment"'), ok => 1 });

for my $v ('"segment"', '"SEGMENT"', '"Segment "', '" Segment"', '""',
           '"Segmen"', '"Segments"', '"Segment\n"', '"Segment\u0020"', '0',
           '1')
{
    add({ name => "destination $v", body => post(destination => $v),
          message => 'destination must be Segment' });
}

for my $v ('"eu"', '"us"', '"Eu"', '"uS"', '""', '"EUR"', '"EU "', '"U S"',
           '"GLOBAL"', '1', '0')
{
    add({ name => "destination_region $v",
          body => post(properties => props(destination_region => $v)),
          message => 'properties.destination_region must be EU or US' });
}

for my $v ('"Open"', '"OPEN"', '"opened"', '""', '"open "',
           '"machine-opened"', '"Drop"', '1', '0')
{
    add({ name => "email event $v", body => post(filters => events($v)),
          message => 'filters.email_events[0] is not a valid email event' });
}

add({ name => 'several bad events, each named',
      body => post(filters => events('"open"', '"Click"', '"bounce"', '""',
                                      '"spamreport"', '7')),
      message => join(', ', map { "filters.email_events[$_] is not a valid "
                                  . "email event" } 1, 3, 5) });

add({ name => 'elements of nested arrays are not events',
      body => post(filters => events('[1,2,3]', '"x"', '{"a":"b"}', '"open"',
                                     '["open"]', '"drop"')),
      message => join(', ', map { "filters.email_events[$_] is not a valid "
                                  . "email event" } 0, 1, 2, 4) });

# the first 20 failures are named, the rest counted: the answer stays small
add({ name => '1000 bad events: 20 named, the rest counted',
      body => post(filters => events(('1') x 1000)),
      message => join(', ', (map { "filters.email_events[$_] is not a "
                                   . "valid email event" } 0 .. 19),
                            'and 980 more failures') });

add({ name => '21 bad events: 20 named, one counted',
      body => post(filters => events(('1') x 21)),
      message => join(', ', (map { "filters.email_events[$_] is not a "
                                   . "valid email event" } 0 .. 19),
                            'and 1 more failure') });


# --- write_key length in code points ---------------------------------------

my $TOO_SHORT_OR_LONG = 'properties.write_key must be between 6 and 51 '
                        . 'characters';

# [ what, one character as written in JSON, that character decoded ]
my @CHARS = (
    [ 'ASCII', 'k', 'k' ],
    [ '2-byte UTF-8', "\xc3\xa9", "\xc3\xa9" ],
    [ '3-byte UTF-8', "\xe2\x82\xac", "\xe2\x82\xac" ],
    [ '4-byte UTF-8', "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" ],
    [ '\u escape', '\u00e9', "\xc3\xa9" ],
    [ '\u escape of ASCII', '\u004b', 'K' ],
    [ '3-byte \u escape', '\u20ac', "\xe2\x82\xac" ],
    [ 'surrogate pair', '\ud83d\ude00', "\xf0\x9f\x98\x80" ],
);

for my $ch (@CHARS) {
    my ($what, $json, $decoded) = @$ch;

    for my $n (5, 6, 51, 52) {
        # ASCII keys differ in their first character from one length to
        # the next, so that none is a substring of another's log line
        my $raw = $what eq 'ASCII' ? "L$n" . ('k' x ($n - length "L$n"))
                                   : $json x $n;
        (my $value = $raw) =~ s/\Q$json\E/$decoded/g;
        secret($value, $raw);

        my %c = (name => "write_key of $n characters, $what",
                 body => post(properties => props(write_key => qq("$raw"))));

        if ($n == 6 || $n == 51) {
            $c{ok} = 1;
        } else {
            $c{message} = $TOO_SHORT_OR_LONG;
        }

        add(\%c);
    }
}

{
    my $six = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" . '\u00e9\ud83d\ude00';
    secret($six, "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9"
                     . "\xf0\x9f\x98\x80");
    add({ name => 'write_key of 6 characters of every width',
          body => post(properties => props(write_key => qq("$six"))),
          ok => 1 });

    my $five = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" . '\u00e9\ud83d\ude00';
    add({ name => 'write_key of 5 characters of several widths',
          body => post(properties => props(write_key => qq("$five"))),
          message => $TOO_SHORT_OR_LONG });

    add({ name => 'empty write_key',
          body => post(properties => props(write_key => '""')),
          message => $TOO_SHORT_OR_LONG });

    my $escapes = '\t\n\"\\\\/\r';    # 6 characters after decoding
    secret("\t\n\"\\/\r");
    add({ name => 'write_key of 6 short escapes',
          body => post(properties => props(write_key => qq("$escapes"))),
          ok => 1 });
}


# --- required members on POST ----------------------------------------------

my @MISSING = (
    [ 'destination', post(destination => undef), 'destination is required' ],
    [ 'filters', post(filters => undef), 'filters is required' ],
    [ 'filters.email_events', post(filters => '{}'),
      'filters.email_events is required' ],
    [ 'properties', post(properties => undef), 'properties is required' ],
    [ 'properties.write_key', post(properties => props(write_key => undef)),
      'properties.write_key is required' ],
    [ 'properties.destination_region',
      post(properties => props(destination_region => undef)),
      'properties.destination_region is required' ],
    [ 'everything', '{}',
      'destination is required, filters is required, properties is required' ],
    [ 'everything but a label', '{"label":"only"}',
      'destination is required, filters is required, properties is required' ],
    [ 'both properties', post(properties => '{}'),
      'properties.write_key is required, '
      . 'properties.destination_region is required' ],
    [ 'one of each level',
      json_object(filters => '{"other":1}',
                  properties => qq({"write_key":"$WK"})),
      'destination is required, filters.email_events is required, '
      . 'properties.destination_region is required' ],
    [ 'members only under an unknown one',
      json_object(x => post()),
      'destination is required, filters is required, properties is required' ],
);

add({ name => "POST without $_->[0]", body => $_->[1], message => $_->[2] })
    for @MISSING;

# the message follows the schema's order, not the document's
add({ name => 'failures in reverse document order',
      body => json_object(label => '1',
                          properties => '{"destination_region":"XX"}',
                          filters => events('"nope"'),
                          destination => '"y"'),
      message => 'destination must be Segment, '
                 . 'filters.email_events[0] is not a valid email event, '
                 . 'properties.write_key is required, '
                 . 'properties.destination_region must be EU or US, '
                 . 'label must be a string' });

add({ name => 'every member wrong at once',
      body => json_object(destination => 'null',
                          filters => events('null', '"x"'),
                          properties => props(write_key => '"Zq3%~"',
                                              destination_region => '"eu"'),
                          label => 'false'),
      message => 'destination must be Segment, '
                 . 'filters.email_events[0] is not a valid email event, '
                 . 'filters.email_events[1] is not a valid email event, '
                 . "$TOO_SHORT_OR_LONG, "
                 . 'properties.destination_region must be EU or US, '
                 . 'label must be a string' });
secret('Zq3%~');


# --- types and nulls -------------------------------------------------------

# [ member, message, wrong values, how to place a value in a POST body ]
my @TYPES = (
    [ 'destination', 'destination must be Segment',
      [ '1', '1.5', 'true', 'false', 'null', '[]', '["Segment"]', '{}',
        '{"destination":"Segment"}' ],
      sub { post(destination => $_[0]) } ],
    [ 'filters', 'filters must be an object',
      [ '"open"', '1', 'true', 'null', '[]', '[{"email_events":["open"]}]' ],
      sub { post(filters => $_[0]) } ],
    [ 'filters.email_events', 'filters.email_events must be an array',
      [ '"open"', '1', 'false', 'null', '{}', '{"0":"open"}' ],
      sub { post(filters => qq({"email_events":$_[0]})) } ],
    [ 'filters.email_events[0]',
      'filters.email_events[0] is not a valid email event',
      [ '1', 'true', 'null', '[]', '["open"]', '{}', '{"open":1}' ],
      sub { post(filters => events($_[0])) } ],
    [ 'properties', 'properties must be an object',
      [ '"x"', '1', 'true', 'null', '[]', '[' . props() . ']' ],
      sub { post(properties => $_[0]) } ],
    [ 'properties.write_key', 'properties.write_key must be a string',
      [ '1234567', '-1', 'true', 'null', '[]', qq(["$WK"]), '{}' ],
      sub { post(properties => props(write_key => $_[0])) } ],
    [ 'properties.destination_region',
      'properties.destination_region must be EU or US',
      [ '1', 'true', 'null', '[]', '["EU"]', '{}', '{"EU":"US"}' ],
      sub { post(properties => props(destination_region => $_[0])) } ],
    [ 'label', 'label must be a string',
      [ '1', '0.5', 'true', 'false', 'null', '[]', '["x"]', '{}' ],
      sub { post(label => $_[0]) } ],
);

for my $type (@TYPES) {
    my ($member, $message, $values, $place) = @$type;
    add({ name => "POST $member = $_", body => $place->($_),
          message => $message })
        for @$values;
}

# a wrong container hides what it would hold
add({ name => 'filters an array: email_events not looked for',
      body => post(filters => '[]', properties => '"p"'),
      message => 'filters must be an object, properties must be an object' });

add({ name => 'labels of any string pass',
      body => post(label => '"caf\u00e9 \"x\" \\\\ \ud83d\ude00 '
                            . "\xe2\x98\x83\""), ok => 1 });


# --- unknown members pass by default ---------------------------------------

add({ name => 'unknown members at every level',
      body => json_object(
          id => '"x"', destination => '"Segment"',
          filters => '{"email_events":["open"],"extra":[1,{}]}',
          properties => qq({"region":"EU","write_key":"$WK",)
                        . '"destination_region":"US","x":null}',
          label => '"l"', user_id => '12', nested => '{"a":{"b":[]}}'),
      ok => 1 });

add({ name => 'known names under an unknown member are not checked',
      body => post(extra => [ x => '{"destination":1,"label":null,'
                                  . '"filters":"f","properties":[]}' ]),
      ok => 1 });



# --- names that differ from a schema member's only in letter case ----------

# Go's encoding/json, among others, reads "Destination" as destination: the
# gateway refuses such a name in the objects it checks, strict or not
sub shadows {
    my ($path, $member) = @_;
    return "$path differs from $member only in letter case";
}

add({ name => 'a top-level name in another letter case beside the member',
      body => post(extra => [ Destination => '"Elsewhere"' ]),
      message => shadows('Destination', 'destination') });

add({ name => 'top-level names in other letter cases',
      body => post(extra => [ Label => '1', DESTINATION => 'null',
                              pRoPeRtIeS => '{}', FILTERS => '[]' ]),
      message => join(', ', shadows('Label', 'label'),
                      shadows('DESTINATION', 'destination'),
                      shadows('pRoPeRtIeS', 'properties'),
                      shadows('FILTERS', 'filters')) });

add({ name => 'email_events in another letter case',
      body => post(filters => '{"EMAIL_EVENTS":["x"],"email_events":[]}'),
      message => shadows('filters.EMAIL_EVENTS', 'filters.email_events') });

add({ name => 'write_key in another letter case, alone',
      body => post(properties => '{"Write_Key":"wk-other-Ab12",'
                                 . '"destination_region":"US"}'),
      message => 'properties.write_key is required, '
                 . shadows('properties.Write_Key', 'properties.write_key') });
secret('wk-other-Ab12');

add({ name => 'destination_region in another letter case',
      body => post(properties => props(destination_region => '"EU"')
                                 =~ s/\}$/,"DESTINATION_REGION":"US"}/r),
        message => shadows('properties.DESTINATION_REGION',
                           'properties.destination_region') });

# U+017F LATIN SMALL LETTER LONG S folds onto s, U+212A KELVIN SIGN onto k
add({ name => 'a long s for s, as UTF-8',
      body => post(extra => [ "de\xc5\xbftination" => '"x"' ]),
      message => shadows("de\xc5\xbftination", 'destination') });

add({ name => 'a long s for s, escaped',
      body => post(extra => [ 'propertie\u017f' => '{}' ]),
      message => shadows("propertie\xc5\xbf", 'properties') });

add({ name => 'a Kelvin sign for k, escaped',
      body => post(properties => props() =~ s/\}$/,"write_\\u212aey":1}/r),
        message => shadows("properties.write_\xe2\x84\xaaey",
                           'properties.write_key') });

add({ name => 'names that differ otherwise pass',
      body => post(extra => [ 'write-key' => 1, Destinations => 2,
                              'destinat\u0131on' => 3, ' label' => 4 ],
                   properties => props() =~ s/\}$/,"WriteKey":1}/r),
        ok => 1 });

add({ name => 'names in other letter cases deeper down pass',
      body => post(extra => [ x => '{"Destination":1,"Properties":'
                                   . '{"Write_Key":2}}' ],
                   filters => '{"email_events":[],"y":{"LABEL":1}}'),
      ok => 1 });


# --- duplicates ------------------------------------------------------------

{
    my $b = post(label => '"a"', extra => [ label => '"b"' ]);
    add({ name => 'duplicate top-level member', body => $b,
          message => dup('label', $b, '"label"') });

    $b = json_object(destination => '"Segment"', destination => '"Segment"');
    add({ name => 'duplicate destination, same value', body => $b,
          message => dup('destination', $b, '"destination"') });

    $b = post(filters => '{"email_events":["open"],"email_events":[]}');
    add({ name => 'duplicate member in filters', body => $b,
          message => dup('email_events', $b, '"email_events"') });

    secret('other-write-key-123');
    $b = post(properties => qq({"write_key":"$WK","destination_region":"US",)
                            . '"write_key":"other-write-key-123"}');
    add({ name => 'duplicate write_key', body => $b,
          message => dup('write_key', $b, '"write_key"') });

    $b = post(label => '"a"', extra => [ 'l\u0061bel' => '"b"' ]);
    add({ name => 'duplicate after escape decoding', body => $b,
          message => dup('label', $b, '"l\u0061bel"') });

    $b = post(extra => [ x => '{"a":1,"b":2,"a":3}' ]);
    add({ name => 'duplicate inside an unknown member', body => $b,
          message => dup('a', $b, '"a"') });

    $b = post(extra => [ x => '[{"a":1},{"a":1,"a":2}]' ]);
    add({ name => 'duplicate in an object inside an array', body => $b,
          message => dup('a', $b, '"a"') });

    $b = post(extra => [ (map { ("m$_" => $_) } 1 .. 40), m17 => 0 ]);
    add({ name => 'duplicate among 40 members', body => $b,
          message => dup('m17', $b, '"m17"') });

    $b = post(label => '"a"', extra => [ 'lab\u0065l' => 'null',
                                         x => 1 ]);
    add({ name => 'duplicate whose value is also wrong', body => $b,
          message => dup('label', $b, '"lab\u0065l"') });

    my $long = 'n' x 100;
    $b = post(extra => [ $long => 1, $long => 2 ]);
    add({ name => 'long duplicate name cut at 64 bytes', body => $b,
          message => 'request body has duplicate member "' . ('n' x 64)
                     . '..." at byte ' . after_last($b, qq("$long")) });

    for my $n (64, 65) {
        my $name = 'q' x $n;
        $b = post(extra => [ $name => 1, $name => 2 ]);
        add({ name => "duplicate name of $n bytes", body => $b,
              message => 'request body has duplicate member "'
                         . ('q' x 64) . ($n > 64 ? '...' : '')
                         . '" at byte ' . after_last($b, qq("$name")) });
    }

    my $snowmen = "\xe2\x98\x83" x 30;
    $b = post(extra => [ $snowmen => 1, $snowmen => 2 ]);
    add({ name => 'long multi-byte duplicate name cut on a character',
          body => $b,
          message => 'request body has duplicate member "'
                     . ("\xe2\x98\x83" x 21) . '..." at byte '
                     . after_last($b, qq("$snowmen")) });

    $b = post(extra => [ 'a\"b' => 1, 'a\u0022b' => 2 ]);
    add({ name => 'duplicate name with a quote in it', body => $b,
          message => dup('a"b', $b, '"a\u0022b"') });

    add({ name => 'same name in different objects is no duplicate',
          body => post(label => '"x"',
                       extra => [ x => '{"label":"y","x":{"label":1}}',
                                  y => '[{"a":1},{"a":1}]' ]),
          ok => 1 });

    add({ name => '1000 distinct members',
          body => post(extra => [ map { ("k$_" => $_) } 1 .. 1000 ]),
          ok => 1 });
}


# --- nesting ---------------------------------------------------------------

{
    # the top-level object is one level, jansson allows 2048
    my $prefix = post(extra => [ x => '' ]);
    $prefix =~ s/\}$//;

    for my $d (2047, 2048, 10000) {
        my $b = $prefix . ('[' x $d) . (']' x $d) . '}';
        my %c = (name => "$d levels of [ in an unknown member", body => $b);
        if ($d < 2048) {
            $c{ok} = 1;
        } else {
            $c{message} = invalid_json_at(length($prefix) + 2048);
        }
        add(\%c);
    }

    # the names of the open objects count towards the limit of 1024
    my $b = $prefix . ('{"a":' x 10000) . '1' . ('}' x 10000) . '}';
    my $open = 4;                       # the names of $prefix's object
    add({ name => '10000 levels of objects in an unknown member', body => $b,
          message => too_many_names(length($prefix)
                                    + 5 * (1024 - $open) + 4) });

    $b = $prefix . ('[{"a":' x 1020) . '1' . ('}]' x 1020) . '}';
    add({ name => '2041 levels of arrays and objects', body => $b,
          ok => 1 });

    # a scalar counts as a level of its own
    $b = $prefix . ('[' x 2046) . '"s"' . (']' x 2046) . '}';
    add({ name => 'a string at level 2048', body => $b, ok => 1 });

    $b = $prefix . ('[' x 2047) . '"s"' . (']' x 2047) . '}';
    add({ name => 'a string at level 2049', body => $b,
          message => invalid_json_at(length($prefix) + 2047 + 3) });

    $b = $prefix . ('[' x 2047) . '12' . (']' x 2047) . '}';
    add({ name => 'a number at level 2049', body => $b,
          message => invalid_json_at(length($prefix) + 2047 + 2) });

    $b = '[' x 10000;
    add({ name => '10000 unclosed [ at the top', body => $b,
          message => invalid_json_at(2049) });
}


# --- the limits on member names -------------------------------------------

# the validator keeps the names of the open objects: at most 1024 of them,
# of at most 16384 bytes decoded
{
    my $names = sub { join ',', map { sprintf '"%s%d":0', $_[0], $_ }
                                    0 .. $_[1] - 1 };

    # four names open in the create body besides these
    my $b = post(extra => [ x => '{' . $names->('n', 1020) . '}' ]);
    add({ name => '1024 names open at once', body => $b, ok => 1 });

    $b = post(extra => [ x => '{' . $names->('n', 1021) . '}' ]);
    add({ name => '1025 names open at once', body => $b,
          message => too_many_names(after_last($b, '"n1020"')) });

    $b = post(extra => [ map { ("x$_" => '{' . $names->('n', 1000) . '}') }
                         1 .. 20 ]);
    add({ name => '20000 names in objects that close', body => $b,
          ok => 1 });

    # 100,000 distinct names in 1 MB: refused at the 1025th
    $b = '{' . $names->('k', 100000) . '}';
    add({ name => 'a megabyte of distinct names', body => $b,
          message => too_many_names(after_last($b, '"k1024"')) });

    $b = json_object(('a' x 16384) => 1);
    add({ name => 'a name of 16384 bytes', op => 'update', body => $b,
          ok => 1 });

    $b = json_object(('a' x 16383) => 1, b => 2);
    add({ name => 'names of 16384 bytes', op => 'update', body => $b,
          ok => 1 });

    $b = json_object(('a' x 16384) => 1, b => 2);
    add({ name => 'names of 16385 bytes', op => 'update', body => $b,
          message => too_many_name_bytes(length($b) - 3) });

    $b = post(extra => [ ('a' x 16384) => 1 ]);
    add({ name => 'a name of 16384 bytes and the others', body => $b,
          message => too_many_name_bytes(after_last($b, 'a":1') - 2) });

    $b = json_object(('\u0061' x 16384) => 1);
    add({ name => 'a name of 16384 bytes in escapes', op => 'update',
          body => $b, ok => 1 });

    $b = json_object(('\u0061' x 16385) => 1);
    add({ name => 'a name of 16385 bytes in escapes', op => 'update',
          body => $b, message => too_many_name_bytes(length($b) - 3) });

    # a duplicate within the limit is still a duplicate
    $b = post(extra => [ x => '{' . $names->('n', 1000) . ',"n999":1}' ]);
    add({ name => 'a duplicate among 1000 names', body => $b,
          message => dup('n999', $b, '"n999"') });
}


# --- not JSON --------------------------------------------------------------

my @SYNTAX = (
    # bad UTF-8 inside strings: at the first byte of the bad sequence
    [ 'a lone 0xff in the label', qq({"label":"a\xffb"}), 11 ],
    [ 'a truncated 2-byte character', qq({"label":"a\xc3"}), 11 ],
    [ 'an overlong encoding', qq({"label":"a\xc0\xafb"}), 11 ],
    [ 'an encoded surrogate', qq({"label":"\xed\xa0\x80"}), 10 ],
    [ 'a code point above U+10FFFF', qq({"label":"\xf4\x90\x80\x80"}), 10 ],
    [ 'a continuation byte alone', qq({"label":"\x80"}), 10 ],
    [ 'Latin-1 text', qq({"label":"caf\xe9"}), 13 ],
    [ 'bad UTF-8 in a member name', qq({"l\xffabel":"x"}), 3 ],
    [ 'bad UTF-8 in the write_key', post(properties => qq({"write_key":"abc)
      . qq(\xfe\xfe\xfe"})),
      length(post(properties => '{"write_key":"abc')) - 1 ],
    [ 'a byte after the object', qq({"label":"x"}\xff), 13 ],
    # strings jansson refuses when it decodes them
    [ '\u0000 in the label', '{"label":"a\u0000b"}', 19 ],
    [ '\u0000 in a member name', '{"a\u0000":1}', 10 ],
    [ 'a lone high surrogate', '{"label":"\ud800"}', 17 ],
    [ 'a lone low surrogate', '{"label":"\udc00"}', 17 ],
    [ 'a high surrogate then a letter escape', '{"label":"\ud800\u0041"}', 23 ],
    [ 'a high surrogate then a letter', '{"label":"\ud800x"}', 18 ],
    [ 'surrogates in reverse order', '{"label":"\ude00\ud83d"}', 23 ],
    [ 'a control byte in a string', qq({"a":"x\ty"}), 7 ],
    [ 'a bad escape', '{"a":"\x"}', 8 ],
    [ 'a bad \u digit', '{"a":"\u12g4"}', 11 ],
    # documents
    [ 'a byte order mark', "\xef\xbb\xbf" . post(), 3 ],
    [ 'trailing bytes', post() . ' x', length(post()) + 2 ],
    [ 'a second object', post() . '{}', length(post()) + 1 ],
    [ 'a closing bracket too many', post() . ']', length(post()) + 1 ],
    [ 'whitespace only', " \r\n\t ", 5 ],
    [ 'a top-level string', '"x"', 3 ],
    [ 'a top-level null', 'null', 4 ],
    [ 'a top-level number', '1', 1 ],
    [ 'a comment', '/*c*/{}', 1 ],
    [ 'a trailing comma', '{"a":1,}', 8 ],
    [ 'single quotes', q({'a':1}), 2 ],
    [ 'an unquoted name', '{a:1}', 2 ],
    [ 'an unclosed object', '{"a":1', 6 ],
    [ 'an unclosed string', '{"a":"b', 7 ],
    [ 'a cut-off body', substr(post(), 0, 40), 40 ],
    # numbers
    [ 'a leading zero', '{"a":01}', 6 ],
    [ 'a bare fraction', '{"a":.5}', 6 ],
    [ 'NaN', '{"a":NaN}', 8 ],
    [ 'True', '{"a":True}', 9 ],
    [ 'a real out of range', '{"n":1e400}', 10 ],
    [ 'a negative real out of range', '{"n":-1e400}', 11 ],
    [ 'just above DBL_MAX', '{"n":1.8e308}', 12 ],
    [ 'an integer above 2^63-1', '{"n":9223372036854775808}', 24 ],
    [ 'an integer below -2^63', '{"n":-9223372036854775809}', 25 ],
    [ 'an integer out of range in a valid body',
      post(extra => [ n => '99999999999999999999' ]), length(post()) + 24 ],
);

add({ name => $_->[0], body => $_->[1], message => invalid_json_at($_->[2]) })
    for @SYNTAX;

add({ name => 'numbers at the edges of their range',
      body => post(extra => [ a => '9223372036854775807',
                              b => '-9223372036854775808',
                              c => '1.7976931348623157e308',
                              d => '4.9e-324', e => '1e-400',
                              f => '-0.0E+0' ]),
      ok => 1 });

add({ name => 'whitespace around the object',
      body => " \r\n\t" . post() . "\n\t ", ok => 1 });

add({ name => 'a top-level array', body => '[]',
      message => 'request body must be a JSON object' });
add({ name => 'a top-level array of the valid object', body => '[' . post()
      . ']', message => 'request body must be a JSON object' });

add({ name => 'an empty body', body => '',
      message => 'request body is empty' });
add({ name => 'no body at all', body => undef,
      message => 'request body is empty' });


# --- large bodies ----------------------------------------------------------

add({ name => 'a 64 KB label', body => post(label => '"' . ('L' x 65536)
                                                    . '"'),
      ok => 1 });

{
    my $pad = 1024 * 1024 - length(post(label => '""'));
    my $b = post(label => '"' . ('m' x $pad) . '"');
    add({ name => 'a 1 MB body', body => $b, ok => 1 });

    $b = post(label => '"' . ('m' x ($pad - 1)) . "\xff\"");
    add({ name => 'a 1 MB body, bad byte at the end',
          body => $b, message => invalid_json_at(length($b) - 3) });

    $b = post(label => '"' . ('m' x $pad) . '"', properties => undef);
    add({ name => 'a 1 MB body missing properties',
          body => $b, message => 'properties is required' });
}


# --- PATCH -----------------------------------------------------------------

my @PATCH_OK = (
    '{}', '{"label":"x"}', '{"filters":{}}', '{"properties":{}}',
    '{"destination":"Segment"}', '{"filters":{"email_events":[]}}',
    qq({"properties":{"write_key":"$WK"}}),
    '{"properties":{"destination_region":"EU"}}',
    '{"unknown":null}', post(),
);

add({ name => "PATCH $_", op => 'update', body => $_, ok => 1 })
    for @PATCH_OK;

my @PATCH_BAD = (
    [ '{"label":1}', 'label must be a string' ],
    [ '{"label":null}', 'label must be a string' ],
    [ '{"filters":[]}', 'filters must be an object' ],
    [ '{"filters":null}', 'filters must be an object' ],
    [ '{"filters":{"email_events":"open"}}',
      'filters.email_events must be an array' ],
    [ '{"filters":{"email_events":["open","Open"]}}',
      'filters.email_events[1] is not a valid email event' ],
    [ '{"properties":"x"}', 'properties must be an object' ],
    [ '{"properties":{"write_key":12345678}}',
      'properties.write_key must be a string' ],
    [ '{"properties":{"write_key":"sh0r~"}}', $TOO_SHORT_OR_LONG ],
    [ '{"properties":{"destination_region":"eu"}}',
      'properties.destination_region must be EU or US' ],
    [ '{"destination":null}', 'destination must be Segment' ],
    [ '{"destination":"segment","label":[]}',
      'destination must be Segment, label must be a string' ],
    [ '[]', 'request body must be a JSON object' ],
    [ '', 'request body is empty' ],
    [ '{"label":"a","label":"a"}',
      'request body has duplicate member "label" at byte 20' ],
    [ '{"label":"x"', invalid_json_at(12) ],
);
secret('sh0r~');

add({ name => "PATCH $_->[0]", op => 'update', body => $_->[0],
      message => $_->[1] })
    for @PATCH_BAD;



# --- sendgrid_strict -------------------------------------------------------

# [ what, body, failures with sendgrid_strict on, failures without it
# (none: valid) ]
my @STRICT = (
    [ 'an unknown top-level member', post(extra => [ id => '"x"' ]),
      'id is not allowed' ],
    [ 'an unknown member in filters',
      post(filters => '{"email_events":["open"],"x":1}'),
      'filters.x is not allowed' ],
    [ 'an unknown member in properties',
      post(properties => qq({"region":"EU","write_key":"$WK",)
                         . '"destination_region":"US"}'),
      'properties.region is not allowed' ],
    [ 'unknown members everywhere, in document order',
      json_object(zeta => '1', destination => '"Segment"',
                  filters => '{"b":[],"email_events":["open"],"a":{}}',
                  properties => qq({"write_key":"$WK","k":null,)
                                . '"destination_region":"EU"}',
                  alpha => '"x"', label => '"l"', mid => 'true'),
      'zeta is not allowed, filters.b is not allowed, '
      . 'filters.a is not allowed, properties.k is not allowed, '
      . 'alpha is not allowed, mid is not allowed' ],
    [ 'unknown members after the schema failures',
      json_object(x => '1', destination => '"y"', filters => '{"z":2}',
                  properties => '{"destination_region":"eu","w":3}'),
      'destination must be Segment, filters.email_events is required, '
      . 'properties.write_key is required, '
      . 'properties.destination_region must be EU or US, x is not allowed, '
      . 'filters.z is not allowed, properties.w is not allowed',
      'destination must be Segment, filters.email_events is required, '
      . 'properties.write_key is required, '
      . 'properties.destination_region must be EU or US' ],
    [ 'only the three levels are looked at',
      post(filters => '{"email_events":[{"foo":1}],"nested":{"a":{"b":1}}}',
           properties => qq({"write_key":"$WK","destination_region":"US",)
                         . '"x":{"destination":1,"y":[{"z":0}]}}',
           extra => [ deep => '{"a":{"b":{"c":[{"d":1}]}}}' ]),
      'filters.email_events[0] is not a valid email event, '
      . 'filters.nested is not allowed, properties.x is not allowed, '
      . 'deep is not allowed',
      'filters.email_events[0] is not a valid email event' ],
    [ 'known names at the wrong level',
      post(filters => '{"email_events":[],"label":"x"}',
           extra => [ write_key => qq("$WK"), email_events => '[]' ]),
      'filters.label is not allowed, write_key is not allowed, '
      . 'email_events is not allowed' ],
    [ 'a name written with escapes', post(extra => [ '\u00e9t\u00e9' => 1 ]),
      "\xc3\xa9t\xc3\xa9 is not allowed" ],
    [ 'a name with a newline and a quote', post(extra => [ 'a\nb\"' => 1 ]),
      "a\nb\" is not allowed" ],
    [ 'a name with a control byte', post(extra => [ 'c\u0001' => 1 ]),
      "c\x01 is not allowed" ],
    [ 'a long name', post(extra => [ ('u' x 100) => 1 ]),
      ('u' x 64) . '... is not allowed' ],
    [ 'an empty name', post(extra => [ '' => 1 ]), ' is not allowed' ],
    [ '500 unknown members', post(extra => [ map { ("x$_" => 1) } 1 .. 500 ]),
      join(', ', (map { "x$_ is not allowed" } 1 .. 20),
                 'and 480 more failures') ],
    [ 'a known name in another case', post(extra => [ Label => '"x"' ]),
      'Label differs from label only in letter case',
      'Label differs from label only in letter case' ],
    [ 'known names in other cases among unknown members',
      post(extra => [ a => 1, PROPERTIES => '{}', b => 2 ],
           filters => '{"email_events":[],"Email_Events":[]}'),
      'filters.Email_Events differs from filters.email_events only in '
      . 'letter case, a is not allowed, '
      . 'PROPERTIES differs from properties only in letter case, '
      . 'b is not allowed',
      'filters.Email_Events differs from filters.email_events only in '
      . 'letter case, PROPERTIES differs from properties only in letter '
      . 'case' ],
    [ 'a valid body', post() ],
    [ 'escaped known names',
      '{"d\u0065stination":"Segment","filters":{"email_\u0065vents"'
      . qq(:[]},"properties":{"write_key":"$WK",)
      . '"destination_region":"EU"},"l\u0061bel":"x"}' ],
    [ 'a duplicate unknown member',
      post(extra => [ x => '1', x => '2' ]),
      'request body has duplicate member "x" at byte '
      . (length(post(extra => [ x => '1', x => '2' ])) - 3),
      'request body has duplicate member "x" at byte '
      . (length(post(extra => [ x => '1', x => '2' ])) - 3) ],
    [ '1025 names', '{' . join(',', map { qq("n$_":0) } 0 .. 1024) . '}',
      too_many_names(length('{' . join(',', map { qq("n$_":0) }
                                            0 .. 1023)) + 8),
      too_many_names(length('{' . join(',', map { qq("n$_":0) }
                                            0 .. 1023)) + 8) ],
);

for my $s (@STRICT) {
    my ($what, $body, $strict, $lax) = @$s;

    add({ name => "strict: $what", strict => 1, body => $body,
          defined $strict ? (message => $strict) : (ok => 1) });
    add({ name => "not strict: $what", body => $body,
          defined $lax ? (message => $lax) : (ok => 1) });
}

add({ name => 'strict: PATCH {}', op => 'update', strict => 1, body => '{}',
      ok => 1 });
add({ name => 'strict: PATCH with an unknown member', op => 'update',
      strict => 1, body => '{"x":1,"filters":{"y":2},"label":3}',
      message => 'label must be a string, x is not allowed, '
                 . 'filters.y is not allowed' });


# --- bodies that t/61-body-transport.t sends every way ----------------------

{
    # characters of every width and escapes, so that chunk and buffer
    # boundaries fall inside them
    my $mix = "ab\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
              . '\u00e9\ud83d\ude00\"\\\\';
    my $big = $mix x 1551;                  # about 50 KB
    my $half = $mix x 700;
    my $events = '{"email_events":["open","click"]}';
    my $b;

    add({ name => 'transport: small valid', transport => 1, ok => 1,
          body => post(filters => $events,
                       label => '"caf\u00e9 ' . "\xe2\x98\x83\"") });

    add({ name => 'transport: 50 KB valid', transport => 1, ok => 1,
          body => post(filters => $events, label => qq("$big")) });

    add({ name => 'transport: small, bad region', transport => 1,
          body => post(filters => $events,
                       properties => props(destination_region => '"eu"')),
          message => 'properties.destination_region must be EU or US' });

    add({ name => 'transport: 50 KB, every failure after the label',
          transport => 1,
          body => json_object(label => qq("$big"), destination => '"x"',
                              filters => '{"email_events":["open","Open"]}',
                              properties => props(write_key => '"Zq3%~"')),
          message => 'destination must be Segment, '
                     . 'filters.email_events[1] is not a valid email event, '
                     . 'properties.write_key must be between 6 and 51 '
                     . 'characters' });

    $b = post(filters => $events, label => qq("$big\xff"));
    add({ name => 'transport: 50 KB, bad byte near the end', transport => 1,
          body => $b, message => invalid_json_at(index($b, "\xff")) });

    $b = post(filters => $events, label => qq("$big"),
              extra => [ label => '"x"' ]);
    add({ name => 'transport: 50 KB, duplicate at the end', transport => 1,
          body => $b,
          message => 'request body has duplicate member "label" at byte '
                     . (length($b) - 5) });

    $b = post(filters => $events, label => qq("$half\\udc00$half"));
    add({ name => 'transport: 50 KB, lone surrogate in the middle',
          transport => 1, body => $b,
          message => invalid_json_at(length($b) - 1) });

    $b = substr(post(filters => $events, label => qq("$big")), 0, -1);
    add({ name => 'transport: 50 KB, last byte missing', transport => 1,
          body => $b, message => invalid_json_at(length $b) });

    add({ name => 'transport: top-level array', transport => 1,
          body => '[' . post(filters => $events) . ']',
          message => 'request body must be a JSON object' });

    add({ name => 'transport: empty', transport => 1, body => '',
          message => 'request body is empty' });
}

1;
