# Upstream error bodies on the module's routes.  Whatever shape, encoding
# and framing the upstream answers with, the client gets the answer
# untouched, and one normalized line is logged: the same JSON as
# $sendgrid_error.

use strict;
use warnings;

use Test::More;
use Compress::Raw::Zlib;
use IO::Compress::Deflate qw(deflate $DeflateError);
use IO::Compress::Gzip qw(gzip $GzipError);
use IO::Compress::RawDeflate qw(rawdeflate $RawDeflateError);
use SGTest qw(create_body fold);

my $t = SGTest->new;
$t->key_file('global.key', "SG.errlog-global.0123456789abcdef\n");
$t->key_file('eu.key', "SG.errlog-eu.fedcba9876543210\n");

my $conf = <<'CONF';
    %%ERROR_VARIABLE_LOGS%%

    sendgrid_api_key_file %%DIR%%/global.key;
    sendgrid_api_key_file %%DIR%%/eu.key eu;
    sendgrid_subuser_region ~^eu- eu;
CONF
$t->start($conf . SGTest::gateway_server('localhost')
          . SGTest::gateway_server('small.test',
                                   'sendgrid_error_body_max 64;')
          . SGTest::gateway_server('none.test',
                                   'sendgrid_error_body_max 0;'));


# -- helpers ----------------------------------------------------------------

# the write_key of the requests, which no log may show
my $write_key = 'wk_errlog_7c1d2e';
$t->secret($write_key);

my $create = create_body(write_key => $write_key);

my %requests = (
    list   => [ GET => '/v3/marketing/integrations' ],
    create => [ POST => '/v3/marketing/integrations', $create ],
    delete => [ DELETE => '/v3/marketing/integrations?ids=5a1234,6b2345' ],
    get    => [ GET => '/v3/marketing/integrations/5a1234' ],
    update => [ PATCH => '/v3/marketing/integrations/5a1234', '{"label":"renamed"}' ],
);

# how the mock frames its answer, and who asks (subuser, region)
my @deliveries = (
    [ whole   => {},                               [ undef, 'global' ] ],
    [ chunked => { chunked => 1, chunk_size => 16 }, [ 'acme', 'global' ] ],
    [ bytes   => { chunked => 1, chunk_size => 1 },  [ 'eu-acme', 'eu' ] ],
);

sub upstream_case {
    my (%c) = @_;

    for my $d (@deliveries) {
        my ($how, $framing, $who) = @$d;
        my ($subuser, $region) = @$who;
        my $name = "$c{name} ($how)";

        $t->upstream_response($region, status => $c{status},
                              headers => $c{headers}, body => $c{body},
                              %$framing);

        my ($method, $target, $body) = @{$requests{$c{op}}};
        my $x = $t->request_and_logs($method, $target, body => $body,
                                     subuser => $subuser, host => $c{host});
        $t->upstream_response($region);

        my @seen = $t->upstream($region);
        is(scalar @seen, 1, "$name: forwarded to the $region upstream");

        my $r = $x->{r};
        is($r->{status}, $c{status}, "$name: the client gets the upstream's status");
        ok($r->{body} eq $c{body}, "$name: the client gets the upstream's body byte for byte")
            or diag(sprintf "got %d bytes, sent %d", length $r->{body}, length $c{body});
        for my $h (@{$c{headers}}) {
            is_deeply($r->{headers}{lc $h->[0]}, [ $h->[1] ],
                      "$name: $h->[0] unchanged");
        }

        $t->is_error_line($name, $x, source => 'upstream',
                          status => $c{status}, operation => $c{op},
                          region => $region, subuser => $subuser,
                          errors => $c{errors}, truncated => $c{truncated});
    }
}

# what zlib makes of the first n bytes of a compressed stream
sub inflate_prefix {
    my ($data, $n, $bits) = @_;
    my ($z) = Compress::Raw::Zlib::Inflate->new(-WindowBits => $bits,
                                                -ConsumeInput => 1);
    my $in = substr($data, 0, $n);
    my $out = '';
    $z->inflate($in, $out);
    return $out;
}


# -- the shapes ------------------------------------------------------------

my $json = [ 'Content-Type', 'application/json' ];

my $html = "<html>\r\n<head><title>502 Bad Gateway</title>\r\n"
         . "<style>body { width: 35em; margin: 0 auto; }</style></head>\r\n"
         . "<body>\r\n<!-- edge node 7 -->\r\n"
         . "<center><h1>502   Bad\tGateway</h1></center>\r\n"
         . "<hr><center>awselb/2.0 &amp; co</center>\r\n</body>\r\n</html>\r\n";
my $html_text = '502 Bad Gateway 502 Bad Gateway awselb/2.0 &amp; co';

my @cases = (
    { name => 'SendGrid errors with field and help', op => 'create',
      status => 400, headers => [ $json ],
      body => '{"errors":[{"field":"destination","message":"destination is not supported",'
            . '"help":"https://docs.sendgrid.com/errors#destination"}]}',
      errors => [ [ 'destination', 'destination is not supported' ] ] },

    { name => 'SendGrid errors without field or help', op => 'list',
      status => 401, headers => [ $json ],
      body => '{"errors":[{"message":"authorization required"}]}',
      errors => [ [ undef, 'authorization required' ] ] },

    { name => 'SendGrid errors with a null field', op => 'get',
      status => 403, headers => [ $json ],
      body => '{"errors":[{"field":null,"message":"access forbidden","help":null}]}',
      errors => [ [ undef, 'access forbidden' ] ] },

    { name => 'SendGrid errors, several, with escapes', op => 'update',
      status => 400, headers => [ $json ],
      body => "{\n  \"errors\": [\n    {\"field\": \"label\", \"message\": \"label is too long\"},\n"
            . "    {\"field\": \"filters.email_events[0]\", \"message\": \"unknown event \\\"opened\\\" \\u2013 see docs\"}\n  ]\n}\n",
      errors => [ [ 'label', 'label is too long' ],
                  [ 'filters.email_events[0]', "unknown event \"opened\" \x{2013} see docs" ] ] },

    { name => 'parameter stands for field', op => 'delete',
      status => 400, headers => [ $json ],
      body => '{"errors":[{"message":"IDs cannot be an empty string","parameter":"ids[1]"}]}',
      errors => [ [ 'ids[1]', 'IDs cannot be an empty string' ] ] },

    { name => 'errors as strings', op => 'list',
      status => 429, headers => [ $json, [ 'Retry-After', '1' ] ],
      body => '{"errors":["rate limit exceeded","retry in 1 second"]}',
      errors => [ [ undef, 'rate limit exceeded' ], [ undef, 'retry in 1 second' ] ] },

    { name => 'an error member', op => 'create',
      status => 500, headers => [ $json ],
      body => '{"error":"internal error, try again"}',
      errors => [ [ undef, 'internal error, try again' ] ] },

    { name => 'a message member', op => 'get',
      status => 404, headers => [ $json ],
      body => '{"message":"integration not found"}',
      errors => [ [ undef, 'integration not found' ] ] },

    { name => 'JSON array', op => 'list',
      status => 400, headers => [ $json ],
      body => '[1,"two",{"three":3}]',
      errors => [ [ undef, '[1,"two",{"three":3}]' ] ] },

    { name => 'JSON string', op => 'get',
      status => 400, headers => [ $json ],
      body => '"caf\u00e9 is closed"',
      errors => [ [ undef, "\"caf\x{e9} is closed\"" ] ] },

    { name => 'JSON object of no known shape', op => 'update',
      status => 422, headers => [ $json ],
      body => "{\"errors\":\"not a list\",\n  \"code\":7}",
      errors => [ [ undef, '{"errors":"not a list", "code":7}' ] ] },

    { name => 'HTML from a load balancer', op => 'list',
      status => 502, headers => [ [ 'Content-Type', 'text/html' ] ],
      body => $html, errors => [ [ undef, $html_text ] ] },

    { name => 'plain text', op => 'delete',
      status => 503, headers => [ [ 'Content-Type', 'text/plain' ] ],
      body => "upstream connect error or disconnect/reset before headers.\r\n\treset reason:   overflow\n",
      errors => [ [ undef, 'upstream connect error or disconnect/reset before headers. reset reason: overflow' ] ] },

    { name => 'empty body', op => 'create',
      status => 503, headers => [],
      body => '', errors => [ [ undef, 'Service Unavailable' ] ] },

    { name => 'empty JSON-typed body', op => 'list',
      status => 429, headers => [ $json ],
      body => '', errors => [ [ undef, 'Too Many Requests' ] ] },

    { name => 'whitespace only', op => 'get',
      status => 500, headers => [ [ 'Content-Type', 'text/plain' ] ],
      body => " \r\n\t \n", errors => [ [ undef, 'Internal Server Error' ] ] },

    { name => 'invalid UTF-8 text', op => 'list',
      status => 400, headers => [ [ 'Content-Type', 'text/plain; charset=utf-8' ] ],
      body => "caf\xe9 cr\xc3\xa8me \xff\xfe end \xe2\x82",
      errors => [ [ undef, "caf\x{fffd} cr\x{e8}me \x{fffd}\x{fffd} end \x{fffd}\x{fffd}" ] ] },

    { name => 'invalid UTF-8 in JSON', op => 'create',
      status => 400, headers => [ $json ],
      body => "{\"errors\":[{\"field\":\"label\",\"message\":\"bad \xff byte\"}]}",
      errors => [ [ undef, "{\"errors\":[{\"field\":\"label\",\"message\":\"bad \x{fffd} byte\"}]}" ] ] },
);

# compressed bodies
my $sg_body = '{"errors":[{"field":"filters","message":"compressed error body"}]}';
my $sg_errors = [ [ 'filters', 'compressed error body' ] ];

gzip(\$sg_body => \my $gz) or die $GzipError;
deflate(\$sg_body => \my $zlib) or die $DeflateError;
rawdeflate(\$sg_body => \my $raw) or die $RawDeflateError;
gzip(\$html => \my $gz_html) or die $GzipError;

push @cases,
    { name => 'gzip JSON', op => 'create', status => 400,
      headers => [ $json, [ 'Content-Encoding', 'gzip' ] ],
      body => $gz, errors => $sg_errors },

    { name => 'deflate (zlib) JSON', op => 'update', status => 400,
      headers => [ $json, [ 'Content-Encoding', 'deflate' ] ],
      body => $zlib, errors => $sg_errors },

    { name => 'deflate (raw) JSON', op => 'get', status => 400,
      headers => [ $json, [ 'Content-Encoding', 'deflate' ] ],
      body => $raw, errors => $sg_errors },

    { name => 'gzip HTML', op => 'list', status => 502,
      headers => [ [ 'Content-Type', 'text/html' ], [ 'Content-Encoding', 'gzip' ] ],
      body => $gz_html, errors => [ [ undef, $html_text ] ] };

# sendgrid_error_body_max 64 on small.test
my $over = ('x' x 40) . ' ' . ('y' x 200);
my $long_sg = '{"errors":[{"field":"label","message":"' . ('m' x 100) . '"}]}';
my $words = 'word ' x 2000;
gzip(\$words => \my $gz_words) or die $GzipError;
my $hex = join ' ', map { sprintf '%08x', ($_ * 2654435761) % 4294967296 } 1 .. 200;
gzip(\$hex => \my $gz_hex) or die $GzipError;
cmp_ok(length $gz_hex, '>', 64, 'the hex text compresses to more than 64 bytes');

push @cases,
    { name => 'text over sendgrid_error_body_max', op => 'list', status => 400,
      host => 'small.test', headers => [ [ 'Content-Type', 'text/plain' ] ],
      body => $over, truncated => 1,
      errors => [ [ undef, substr($over, 0, 64) ] ] },

    { name => 'text of exactly sendgrid_error_body_max', op => 'list', status => 400,
      host => 'small.test', headers => [ [ 'Content-Type', 'text/plain' ] ],
      body => 'z' x 64, errors => [ [ undef, 'z' x 64 ] ] },

    { name => 'text one byte over sendgrid_error_body_max', op => 'list', status => 400,
      host => 'small.test', headers => [ [ 'Content-Type', 'text/plain' ] ],
      body => 'z' x 65, truncated => 1, errors => [ [ undef, 'z' x 64 ] ] },

    { name => 'SendGrid JSON over sendgrid_error_body_max', op => 'create', status => 400,
      host => 'small.test', headers => [ $json ],
      body => $long_sg, truncated => 1,
      errors => [ [ undef, substr($long_sg, 0, 64) ] ] },

    { name => 'gzip inflating past sendgrid_error_body_max', op => 'get', status => 400,
      host => 'small.test', headers => [ [ 'Content-Type', 'text/plain' ], [ 'Content-Encoding', 'gzip' ] ],
      body => $gz_words, truncated => 1,
      errors => [ [ undef, join ' ', ('word') x 13 ] ] },

    { name => 'gzip body cut at sendgrid_error_body_max', op => 'get', status => 400,
      host => 'small.test', headers => [ [ 'Content-Type', 'text/plain' ], [ 'Content-Encoding', 'gzip' ] ],
      body => $gz_hex, truncated => 1,
      errors => [ [ undef, fold(inflate_prefix($gz_hex, 64, WANT_GZIP)) ] ] };


# sendgrid_error_body_max 0 on none.test: no byte of a body is inspected;
# the line gives the reason phrase of the status, marked truncated when
# there was a body
push @cases,
    { name => 'sendgrid_error_body_max 0, a text body', op => 'list',
      status => 400, host => 'none.test',
      headers => [ [ 'Content-Type', 'text/plain' ] ], body => 'not read',
      truncated => 1, errors => [ [ undef, 'Bad Request' ] ] },

    { name => 'sendgrid_error_body_max 0, SendGrid JSON', op => 'create',
      status => 422, host => 'none.test', headers => [ $json ],
      body => $long_sg, truncated => 1,
      errors => [ [ undef, 'Unprocessable Entity' ] ] },

    { name => 'sendgrid_error_body_max 0, gzip', op => 'get', status => 503,
      host => 'none.test', headers => [ [ 'Content-Type', 'text/plain' ],
                                        [ 'Content-Encoding', 'gzip' ] ],
      body => $gz_words, truncated => 1,
      errors => [ [ undef, 'Service Unavailable' ] ] },

    { name => 'sendgrid_error_body_max 0, no body', op => 'delete',
      status => 404, host => 'none.test',
      headers => [ [ 'Content-Type', 'text/plain' ] ], body => '',
      errors => [ [ undef, 'Not Found' ] ] };


upstream_case(%$_) for @cases;

$t->done_testing;
