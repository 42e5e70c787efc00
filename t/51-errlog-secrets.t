# Secrets never reach an error line nor $sendgrid_error: the configured
# keys, SG. tokens and the request's write_key, wherever an upstream error
# body puts them, are written [REDACTED]; control bytes are escaped; long
# messages and lines are capped, marked truncated, and stay valid JSON
# within nginx's 2048-byte line.  At the end every file under logs/ is
# searched for every secret, as written and as the logs would escape it.

use strict;
use warnings;

use Test::More;
use IO::Compress::Gzip qw(gzip $GzipError);
use SGTest qw(create_body json_escape);

my $t = SGTest->new;

# configured keys: not SG. tokens, so only their being configured can
# redact them; the subuser key has a quote and a backslash, which JSON and
# the access log escape
my $global_key = 'GLOBAL-key_4f9a8c7e6d5b';
my $eu_key = 'eu+Key/0123=abcXYZ';
my $sub_key = 'acme"sub\\key-998877';
$t->key_file('global.key', "$global_key\n");
$t->key_file('eu.key', "\t$eu_key \n");
$t->key_file('acme.key', "$sub_key\r\n");

# write_key values of requests; the second is é, é, è escaped in the body
my $wk_ascii = 'wk_Segment_5bd1f0e9';
my $wk_utf8 = "cl\xc3\xa9-s\xc3\xa9cr\xc3\xa8te-77";
my $wk_patch = 'patch-Write-Key-31337';
$t->secret($wk_ascii, $wk_utf8, $wk_patch);

# SG. tokens the upstream bodies carry
my $sg_token = 'SG.AbCdEfGhIjKlMnOp.QrStUvWxYz0123456789-_abc';
my $sg_bearer = 'SG.leaked_token.abcdefghijklmnopqrstuvwxyz012345';
my $sg_subuser = 'SG.sneaky.subuser.token';
$t->secret($sg_token, $sg_bearer, $sg_subuser);

# secrets that the client itself sends in a request the gateway refuses:
# its answer names them, but no log may
my $sg_dup = 'SG.dup.token.abc';
my $sg_query = 'SG.query.token';

# what no file under logs/ may hold; the query parameter is left out, as
# nginx's own context ("request: ...") quotes the request line
my @log_secrets = ($global_key, $eu_key, $sub_key, $wk_ascii, $wk_utf8,
                   $wk_patch, $sg_token, $sg_bearer, $sg_subuser, $sg_dup);

my $conf = <<'CONF';
    %%ERROR_VARIABLE_LOGS%%

    sendgrid_api_key_file %%DIR%%/global.key;
    sendgrid_api_key_file %%DIR%%/eu.key eu;
    sendgrid_subuser_region acme-sub global %%DIR%%/acme.key;
    sendgrid_subuser_region ~^eu- eu;
CONF
$t->start($conf . SGTest::gateway_server('localhost')
          . SGTest::gateway_server('small.test',
                                   'sendgrid_error_body_max 64;'));


# -- helpers ----------------------------------------------------------------

# Sends a request and waits until it is logged.  echo: the upstream body
# the answer relays; when it repeats a secret as it is, the answer must
# too, so that answer is kept out of the harness's check of responses (the
# logs are still checked).
sub exchange {
    my ($method, $target, %opt) = @_;
    my $echo = delete $opt{echo};
    my $x = $t->request_and_logs($method, $target, %opt);
    $t->forget_response
        if defined $echo && grep { index($echo, $_) >= 0 } @log_secrets;
    return $x;
}

# the forms a secret takes in a JSON string, and in the access logs' two
# escapings of that JSON
sub nginx_escape {
    my ($s) = @_;
    $s =~ s/(["\\\x00-\x1f\x7f-\xff])/sprintf '\\x%02X', ord $1/ge;
    return $s;
}

sub secret_forms {
    my ($s) = @_;
    my $j = json_escape($s);
    my %f = map { $_ => 1 } $s, $j, json_escape($j), nginx_escape($s),
                            nginx_escape($j);
    return keys %f;
}

# the secrets, or the first 8 bytes of one, in a line or a variable
sub leaks {
    my ($text) = @_;
    return () unless defined $text;
    my @found;
    for my $s (@log_secrets, $sg_query) {
        for my $f (secret_forms($s), secret_forms(substr($s, 0, 8))) {
            push @found, $f if index($text, $f) >= 0;
        }
    }
    return @found;
}

# The harness's checks of the line, and no secret in it.
sub check_error {
    my ($name, $x, %e) = @_;
    my $l = $t->is_error_line($name, $x, %e) or return;

    my @leaks = leaks($l->{json});
    is(scalar @leaks, 0, "$name: no secret in the line")
        or diag(join "\n", $l->{json}, map { "found: $_" } @leaks);
}

my $coll = '/v3/marketing/integrations';
my $item = '/v3/marketing/integrations/5a1234';

my %requests = (
    list       => [ GET => $coll ],
    get        => [ GET => $item ],
    delete     => [ DELETE => "$coll?ids=5a1234" ],
    create     => [ POST => $coll, create_body(write_key => $wk_ascii) ],
    create_utf => [ POST => $coll,
                    create_body(write_key => 'cl\u00e9-s\u00e9cr\u00e8te-77') ],
    update     => [ PATCH => $item, qq{{"properties":{"write_key":"$wk_patch"}}} ],
);

my @deliveries = ([ whole => {} ],
                  [ bytes => { chunked => 1, chunk_size => 1 } ]);

sub upstream_case {
    my (%c) = @_;
    my $op = $c{op};
    (my $operation = $op) =~ s/_utf$//;
    my $region = $c{region} // 'global';

    for my $d (@deliveries) {
        my ($how, $framing) = @$d;
        my $name = "$c{name} ($how)";

        $t->upstream_response($region, status => $c{status},
                              headers => $c{headers}, body => $c{body},
                              %$framing);
        my ($method, $target, $body) = @{$requests{$op}};
        my $x = exchange($method, $target, body => $body, echo => $c{body},
                         subuser => $c{subuser}, host => $c{host});
        $t->upstream_response($region);

        is(scalar $t->upstream($region), 1, "$name: forwarded");
        is($x->{r}{status}, $c{status}, "$name: status relayed");
        ok($x->{r}{body} eq $c{body}, "$name: body relayed byte for byte");

        check_error($name, $x, source => 'upstream', status => $c{status},
                    operation => $operation, region => $region,
                    subuser => $c{subuser}, errors => $c{errors},
                    truncated => $c{truncated}, check => $c{check});
    }
}


# -- secrets in upstream error bodies --------------------------------------

my $json = [ 'Content-Type', 'application/json' ];
my $text = [ 'Content-Type', 'text/plain' ];

my $grant = '{"errors":[{"field":"authorization","message":"The provided authorization grant '
          . $global_key . ' is invalid, expired, or revoked"}]}';
my $grant_errors = [ [ 'authorization', 'The provided authorization grant [REDACTED] is invalid, expired, or revoked' ] ];
gzip(\$grant => \my $gz_grant) or die $GzipError;

(my $sub_key_json = $sub_key) =~ s/(["\\])/\\$1/g;

my @cases = (
    { name => 'global key in a message', op => 'create', status => 401,
      headers => [ $json ], body => $grant, errors => $grant_errors },

    { name => 'global key in a gzip body', op => 'get', status => 401,
      headers => [ $json, [ 'Content-Encoding', 'gzip' ] ], body => $gz_grant,
      errors => $grant_errors },

    { name => 'EU key as a field', op => 'list', status => 400,
      region => 'eu', subuser => 'eu-acme', headers => [ $json ],
      body => qq{{"errors":[{"field":"$eu_key","message":"bad key"}]}},
      errors => [ [ '[REDACTED]', 'bad key' ] ] },

    { name => 'subuser key in HTML', op => 'get', status => 401,
      subuser => 'acme-sub', headers => [ [ 'Content-Type', 'text/html' ] ],
      body => "<html><body><h1>401 Unauthorized</h1><p>token $sub_key revoked</p></body></html>",
      errors => [ [ undef, '401 Unauthorized token [REDACTED] revoked' ] ] },

    { name => 'subuser key JSON-escaped', op => 'get', status => 401,
      subuser => 'acme-sub', headers => [ $json ],
      body => qq{{"errors":[{"field":null,"message":"key $sub_key_json revoked"}]}},
      errors => [ [ undef, 'key [REDACTED] revoked' ] ] },

    { name => 'global key escaped in a JSON array', op => 'list', status => 400,
      headers => [ $json ], body => '["GLOBAL\u002dkey_4f9a8c7e6d5b"]',
      errors => [ [ undef, '["[REDACTED]"]' ] ] },

    { name => 'SG. tokens in string errors', op => 'list', status => 400,
      headers => [ $json ],
      body => qq{{"errors":["$sg_token is not a valid key","try SG.x"]}},
      errors => [ [ undef, '[REDACTED] is not a valid key' ], [ undef, 'try [REDACTED]' ] ] },

    { name => 'Bearer SG. token in an error member', op => 'delete', status => 403,
      headers => [ $json ],
      body => qq{{"error":"Authorization: Bearer $sg_bearer"}},
      errors => [ [ undef, 'Authorization: Bearer [REDACTED]' ] ] },

    { name => 'write_key in a field and a message', op => 'create', status => 400,
      headers => [ $json ],
      body => qq{{"errors":[{"field":"properties.write_key=$wk_ascii","message":"write key $wk_ascii rejected by Segment"}]}},
      errors => [ [ 'properties.write_key=[REDACTED]', 'write key [REDACTED] rejected by Segment' ] ] },

    { name => 'non-ASCII write_key in text', op => 'create_utf', status => 400,
      headers => [ $text ], body => "invalid write_key $wk_utf8 for region US",
      errors => [ [ undef, 'invalid write_key [REDACTED] for region US' ] ] },

    { name => 'write_key escaped in a message member', op => 'update', status => 400,
      headers => [ $json ],
      body => '{"message":"write_key patch\u002dWrite\u002dKey\u002d31337 unknown"}',
      errors => [ [ undef, 'write_key [REDACTED] unknown' ] ] },

    { name => 'SG. token as the subuser', op => 'list', status => 400,
      subuser => $sg_subuser, headers => [ $text ], body => 'bad subuser',
      check => sub {
          my ($o) = @_;
          is($o->{subuser}, '[REDACTED]', 'SG. token as the subuser: redacted');
          is_deeply($o->{errors}, [ { field => undef, message => 'bad subuser' } ],
                    'SG. token as the subuser: errors');
      } },
);


# -- control bytes and caps --------------------------------------------------

my $long = 'long ' x 2000;
my $many = '{"errors":['
         . join(',', map { '{"field":"f' . $_ . '","message":"' . ('e' x 300) . '"}' } 0 .. 39)
         . ']}';

push @cases,
    { name => 'control bytes in JSON', op => 'list', status => 400,
      headers => [ $json ],
      body => '{"errors":[{"field":"f\u0000ield\u001b","message":"line1\nline2\r\u001b[31mred\u007f\ttab\u0007"}]}',
      errors => [ [ "f\x00ield\x1b", "line1\nline2\r\x1b[31mred\x7f\ttab\x07" ] ] },

    { name => 'control bytes in text', op => 'list', status => 400,
      headers => [ $text ], body => "bad\x00byte\x1b[2Jclear\x07 \x01end",
      errors => [ [ undef, "bad\x00byte\x1b[2Jclear\x07 \x01end" ] ] },

    { name => 'long message', op => 'list', status => 400, headers => [ $json ],
      body => qq{{"errors":[{"field":"label","message":"$long"}]}}, truncated => 1,
      errors => [ [ 'label', substr($long, 0, 253) . "\x{2026}" ] ] },

    { name => 'long message of two-byte characters', op => 'list', status => 400,
      headers => [ $json ],
      body => '{"errors":[{"field":"label","message":"' . ('\u00e9' x 1000) . '"}]}',
      truncated => 1, errors => [ [ 'label', ("\x{e9}" x 126) . "\x{2026}" ] ] },

    { name => 'long message of escaped bytes', op => 'list', status => 400,
      headers => [ $json ],
      body => '{"errors":[{"field":"label","message":"' . ('\u0001' x 1000) . '"}]}',
      truncated => 1, errors => [ [ 'label', ("\x01" x 42) . "\x{2026}" ] ] },

    { name => 'long field', op => 'list', status => 400, headers => [ $json ],
      body => '{"errors":[{"field":"' . ('f' x 300) . '","message":"m"}]}',
      truncated => 1, errors => [ [ ('f' x 61) . "\x{2026}", 'm' ] ] },

    { name => 'long subuser', op => 'list', status => 400,
      subuser => 'sub-' . ('u' x 200), headers => [ $text ], body => 'nope',
      check => sub {
          my ($o) = @_;
          is($o->{subuser}, 'sub-' . ('u' x 57) . "\x{2026}", 'long subuser: capped');
          ok($o->{truncated}, 'long subuser: marked truncated');
      } },

    { name => 'forty long errors', op => 'list', status => 400,
      headers => [ $json ], body => $many,
      check => sub {
          my ($o, $raw) = @_;
          my @e = @{$o->{errors} || []};
          ok($o->{truncated}, 'forty long errors: marked truncated');
          ok(@e >= 1 && @e <= 10, 'forty long errors: at most ten entries kept')
              or diag(scalar @e);
          is_deeply([ map { $_->{field} } @e ], [ map { "f$_" } 0 .. $#e ],
                    'forty long errors: the first ones, in order');
          ok(!grep({ $_->{message} !~ /^e+\x{2026}$/ } @e),
             'forty long errors: messages shortened, marked');
          cmp_ok(length $raw, '<=', 1800, 'forty long errors: line within 1800 bytes');
      } },

    { name => 'key at the message cap', op => 'list', status => 400,
      headers => [ $json ],
      body => '{"errors":[{"field":"label","message":"' . ('a' x 250) . " $global_key tail\"}]}",
      truncated => 1,
      errors => [ [ 'label', ('a' x 250) . " \x{2026}" ] ] },

    { name => 'SG. token across sendgrid_error_body_max', op => 'list',
      status => 400, host => 'small.test', headers => [ $text ],
      body => ('p' x 50) . " $sg_token", truncated => 1,
      errors => [ [ undef, ('p' x 50) . ' [REDACTED]' ] ] };

# a configured key cut by sendgrid_error_body_max or by the cap on the
# inflated text: no recognizable start of it may stay
my $cut = ('q' x 52) . " $global_key and more text";
gzip(\$cut => \my $gz_cut) or die $GzipError;
my $no_key_start = sub {
    my ($o) = @_;
    my $m = $o->{errors}[0]{message} // '';
    like($m, qr/^q{52}/, 'a key across the cut: the excerpt');
    unlike($m, qr/GLOBAL-/, 'a key across the cut: none of the key is left');
    ok($o->{truncated}, 'a key across the cut: marked truncated');
};

push @cases,
    { name => 'configured key across sendgrid_error_body_max', op => 'list',
      status => 400, host => 'small.test', headers => [ $text ],
      body => $cut, check => $no_key_start },

    { name => 'configured key across the inflated text cap', op => 'list',
      status => 400, host => 'small.test',
      headers => [ $text, [ 'Content-Encoding', 'gzip' ] ],
      body => $gz_cut, check => $no_key_start };

upstream_case(%$_) for @cases;


# -- the gateway's own answers name what the client sent ----------------------

{
    my $x = exchange(POST => $coll, body => qq{{"$sg_dup":1,"$sg_dup":2}});
    is($x->{r}{status}, 400, 'duplicate SG. member: 400');
    check_error('duplicate SG. member', $x, source => 'gateway', status => 400,
                operation => 'create', region => 'global', subuser => undef,
                check => sub {
                    my ($o) = @_;
                    like($o->{errors}[0]{message},
                         qr/^request body has duplicate member "\[REDACTED\]"/,
                         'duplicate SG. member: named [REDACTED]');
                });

    $x = exchange(GET => "$coll?$sg_query=1");
    is($x->{r}{status}, 400, 'SG. query parameter: 400');
    check_error('SG. query parameter', $x, source => 'gateway', status => 400,
                operation => 'list', region => 'global', subuser => undef,
                errors => [ [ '[REDACTED]', 'unknown query parameter' ] ]);
}


# -- every file under logs/ ------------------------------------------------

$t->stop;

for my $f ($t->log_files) {
    my $content = SGTest::slurp($f);
    (my $short = $f) =~ s{.*/}{};
    my @found;
    for my $s (@log_secrets) {
        for my $form (secret_forms($s)) {
            push @found, $form if index($content, $form) >= 0;
        }
    }
    is(scalar @found, 0, "logs/$short: no secret, in any escaping")
        or diag(join "\n", @found);
}

$t->done_testing;
