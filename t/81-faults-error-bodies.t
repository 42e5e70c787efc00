# Hostile upstream error bodies: 100 MB of text, a gzip bomb, a
# Content-Encoding that lies.  The client gets every byte as the upstream
# sent it; the normalized line reads at most sendgrid_error_body_max bytes
# of the body and inflates at most as many; the worker gives its memory
# back.

use strict;
use warnings;

use Test::More;
use Digest::MD5 qw(md5_hex);
use IO::Compress::Deflate qw(deflate $DeflateError);
use IO::Compress::Gzip qw(gzip $GzipError);
use SGTest qw(fold);

my $t = SGTest->new;
$t->key_file('global.key', "SG.faults-body-global.0123456789abcdef\n");

my $conf = <<'CONF';
    %%ERROR_VARIABLE_LOGS%%

    sendgrid_api_key_file %%DIR%%/global.key;
CONF
$t->start($conf . SGTest::gateway_server('localhost')
          . SGTest::gateway_server('stream.test', 'proxy_buffering off;')
          . SGTest::gateway_server('small.test',
                                   'sendgrid_error_body_max 64;'));

my $item = '/v3/marketing/integrations/5a1234';
my $json = [ 'Content-Type', 'application/json' ];
my $text = [ 'Content-Type', 'text/plain' ];

my $cut = "\x{2026}";


# -- helpers ----------------------------------------------------------------

# The upstream answers a GET with status, headers and body (repeat: n
# times over, chunked: in chunks of 64 KB); the client must get every
# byte, the headers unchanged, and one normalized line with errors.
sub error_body {
    my ($name, %c) = @_;
    my $body = $c{body} x ($c{repeat} // 1);

    $t->upstream_response('global', status => $c{status},
                          headers => $c{headers}, body => $c{body},
                          repeat => $c{repeat}, chunked => $c{chunked},
                          chunk_size => 65536);
    my $x = $t->request_and_logs(GET => $item, host => $c{host});
    $t->upstream_response('global');
    is(scalar $t->upstream('global'), 1, "$name: forwarded once");

    my $r = $x->{r};
    is($r->{status}, $c{status}, "$name: the upstream's status");
    is(length $r->{body}, length $body, "$name: every byte relayed");
    is(md5_hex($r->{body}), md5_hex($body), "$name: the bytes unchanged");
    for my $h (@{$c{headers}}) {
        is_deeply($r->{headers}{lc $h->[0]}, [ $h->[1] ],
                  "$name: $h->[0] unchanged");
    }

    $t->is_error_line($name, $x, source => 'upstream', status => $c{status},
                      operation => 'get', region => 'global',
                      subuser => undef, truncated => $c{truncated},
                      errors => $c{errors});
}


# -- 100 MB ---------------------------------------------------------------------

# 1 KB of text, 102400 times: 100 MB
my $kb = join(' ', map { sprintf 'overloaded-%04d', $_ } 1 .. 64);
$kb .= "\n" . ('.' x (1023 - length $kb));
my $first = substr(fold($kb x 17), 0, 253) . $cut;

for my $host ('localhost', 'stream.test') {
    for my $chunked (0, 1) {
        my $name = '100 MB error body'
                   . ($chunked ? ', chunked' : '')
                   . ($host eq 'stream.test' ? ', unbuffered' : '');
        error_body($name, host => $host, status => 503,
                   headers => [ $text ], body => $kb, repeat => 102400,
                   chunked => $chunked, truncated => 1,
                   errors => [ [ undef, $first ] ]);
    }
}


# -- gzip bombs -----------------------------------------------------------------

my $zeros = "\0" x (10 * 1024 * 1024);
gzip(\$zeros => \my $gz_bomb) or die $GzipError;
cmp_ok(length $gz_bomb, '<', 16384,
       '10 MB of zeros gzip to less than sendgrid_error_body_max');

my $digits = '0' x (10 * 1024 * 1024);
deflate(\$digits => \my $zlib_bomb) or die $DeflateError;
gzip(\$digits => \my $gz_digits) or die $GzipError;
undef $zeros;
undef $digits;

my $gzip_json = [ $json, [ 'Content-Encoding', 'gzip' ] ];

# NUL bytes are control bytes: each counts as the six bytes of its \u0000
# escape, so 42 of them and the cut fill a message
error_body('gzip bomb of zeros', status => 400, headers => $gzip_json,
           body => $gz_bomb, truncated => 1,
           errors => [ [ undef, ("\0" x 42) . $cut ] ]);

error_body('gzip bomb of zeros, sendgrid_error_body_max 64',
           host => 'small.test', status => 400, headers => $gzip_json,
           body => $gz_bomb, truncated => 1,
           errors => [ [ undef, ("\0" x 42) . $cut ] ]);

error_body('gzip bomb of digits', status => 400, headers => $gzip_json,
           body => $gz_digits, truncated => 1,
           errors => [ [ undef, ('0' x 253) . $cut ] ]);

error_body('deflate bomb of digits, sendgrid_error_body_max 64',
           host => 'small.test', status => 400,
           headers => [ $json, [ 'Content-Encoding', 'deflate' ] ],
           body => $zlib_bomb, truncated => 1,
           errors => [ [ undef, '0' x 64 ] ]);


# -- Content-Encoding that lies -------------------------------------------------

my $plain = 'quota exceeded for this subuser, retry later';
my $sg = '{"errors":[{"field":"label","message":"label is too long"}]}';
gzip(\$sg => \my $gz_sg) or die $GzipError;
deflate(\$sg => \my $zlib_sg) or die $DeflateError;

my @lies = (
    [ 'gzip on plain text', [ $text, [ 'Content-Encoding', 'gzip' ] ],
      $plain, 'undecodable gzip body' ],
    [ 'deflate on plain text', [ $text, [ 'Content-Encoding', 'deflate' ] ],
      $plain, 'undecodable deflate body' ],
    [ 'deflate on gzip', [ $json, [ 'Content-Encoding', 'deflate' ] ],
      $gz_sg, 'undecodable deflate body' ],
    [ 'gzip on deflate', [ $json, [ 'Content-Encoding', 'gzip' ] ],
      $zlib_sg, 'undecodable gzip body' ],
);

for my $l (@lies) {
    my ($name, $headers, $body, $message) = @$l;
    error_body($name, status => 400, headers => $headers, body => $body,
               errors => [ [ undef, $message ] ]);
}

# a coding the module does not decode: the body is read as it is
error_body('an unknown coding on plain text', status => 429,
           headers => [ $text, [ 'Content-Encoding', 'x-unknown' ] ],
           body => $plain, errors => [ [ undef, $plain ] ]);

error_body('br on bytes that are not text', status => 400,
           headers => [ $json, [ 'Content-Encoding', 'br' ] ],
           body => "\x8b\x05\x80quota exceeded\x03",
           errors => [ [ undef, "\x{fffd}\x05\x{fffd}quota exceeded\x03" ] ]);

error_body('GZIP in capitals is gzip', status => 400,
           headers => [ $json, [ 'Content-Encoding', 'GZIP' ] ],
           body => $gz_sg, errors => [ [ 'label', 'label is too long' ] ]);


# -- memory -----------------------------------------------------------------------

$t->memory_returned('hostile error bodies', 10, 512, sub {
    for my $b ([ 'localhost', $text, $kb, 10240 ],
               [ 'stream.test', $text, $kb, 10240 ],
               [ 'localhost', $gzip_json, $gz_bomb, 1 ],
               [ 'localhost', $gzip_json, $gz_digits, 1 ],
               [ 'localhost', [ $json, [ 'Content-Encoding', 'deflate' ] ],
                 $gz_sg, 1 ]) {
        my ($host, $headers, $body, $repeat) = @$b;
        $t->upstream_response('global', status => 400, headers => $headers,
                              body => $body, repeat => $repeat);
        $t->request(GET => $item, headers => [ Host => $host ]);
    }
    $t->upstream_response('global');
    $t->upstream('global');
});

$t->done_testing;
