#!/usr/bin/perl
# A socketd handler process in Perl (perl-base: on every Debian system):
# the same "upper" (0x00) and "reverse" (0x01) as upper.py.
#
#   processes = (
#     { name = "perl"; command = [ "/usr/bin/perl",
#         "/usr/share/doc/socketd/examples/processes/upper.pl" ];
#       opcode = 0xb0; instances = 2; }
#   );
#
# then: socketd-cli call perl.upper hello   ->  HELLO
#
# Frames: length (u32 big-endian) + version (1) | opcode | status (u16) |
# request_id (u32) | payload.  The first request is OPCODES (0x05).
use strict;
use warnings;

my @handlers = (
    [ upper   => sub { uc $_[0] } ],
    [ reverse => sub { scalar reverse $_[0] } ],
);
my ( $OK, $UNKNOWN_OPCODE ) = ( 0, 1 );

sub frame {
    my ( $opcode, $status, $id, $payload ) = @_;
    return pack( 'NCCnN', 8 + length $payload, 1, $opcode, $status, $id )
      . $payload;
}

binmode STDIN;
binmode STDOUT;
my ( $buf, $first ) = ( '', 1 );
while ( sysread( STDIN, $buf, 1 << 20, length $buf ) ) {
    my $out = '';
    while ( length $buf >= 4 ) {
        my $len = unpack( 'N', $buf );
        last if length $buf < 4 + $len;
        die "short frame from socketd\n" if $len < 8;
        my ( undef, $opcode, undef, $id ) = unpack( 'CCnN', substr( $buf, 4, 8 ) );
        my $payload = substr( $buf, 12, $len - 8 );
        substr( $buf, 0, 4 + $len, '' );
        if ( $first || ( $opcode == 5 && @handlers <= 5 ) ) {
            my $i = 0;
            my $list = join '', map { sprintf "0x%02x %s\n", $i++, $_->[0] } @handlers;
            $out .= frame( $opcode, $OK, $id, $list );
        }
        elsif ( $opcode < @handlers ) {
            $out .= frame( $opcode, $OK, $id, $handlers[$opcode][1]->($payload) );
        }
        else {
            $out .= frame( $opcode, $UNKNOWN_OPCODE, $id, 'no such handler' );
        }
        $first = 0;
    }
    syswrite( STDOUT, $out ) if length $out;
}
